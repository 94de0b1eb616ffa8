"""nbgrader's settings for every user of the hub: copy to /etc/jupyter/nbgrader_config.py.

nbgrader reads this file for students and the instructor alike; the exchange folder must exist
with the permissions docs/instructor.md gives (root-owned, mode 0777 with the sticky bit).
"""

c = get_config()  # noqa: F821 (defined by traitlets when it loads this file)

c.CourseDirectory.course_id = "nn101"
c.Exchange.root = "/srv/nbgrader/exchange"
