"""nbgrader's settings for every user of the hub: copy to /etc/jupyter/nbgrader_config.py.

nbgrader reads this file for students and the instructor alike; the exchange folder must exist
with the permissions docs/instructor.md gives (root-owned, mode 0777 with the sticky bit).

Both values can come from the environment; deploy/jupyterhub_config.py passes them to every
single-user server, so the hub's COURSE_ID is the only place the course id is set:

  COURSE_ID           nbgrader's course id (default nn101)
  NBGRADER_EXCHANGE   the exchange folder (default /srv/nbgrader/exchange)
"""

import os

c = get_config()  # noqa: F821 (defined by traitlets when it loads this file)

c.CourseDirectory.course_id = os.environ.get("COURSE_ID", "nn101")
c.Exchange.root = os.environ.get("NBGRADER_EXCHANGE", "/srv/nbgrader/exchange")
