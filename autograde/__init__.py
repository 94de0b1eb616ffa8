"""The course's grading pipeline: release, lint and a tamper-proof grader.

``python -m autograde release|grade|lint`` (see ``autograde/__main__.py``).
Modules, in the order a submission meets them:

* ``config``       where the course's files live, settings from ``nbgrader_config.py``
* ``release``      solutions/ -> notebooks/ with nbgrader's generate_assignment
* ``lint``         checks a source notebook against docs/authoring.md
* ``grade``        a batch of students: resume, workers, grades.csv
* ``submission``   one student: rebuild, run, judge, restart after a crash
* ``notebook_io``  reading the chapter and the (untrusted) submission
* ``client``       the grader's end of the channel to the student's process
* ``runner``       the student's process (runs the cells, answers calls)
* ``protocol``     the wire format between the two: plain data, never pickle
* ``judge``        runs test cells in the grader's process, against the runner
* ``feedback``     the student's HTML page; ``results`` the output folder
* ``sandbox``      process isolation of the student's process

This file imports nothing, so the student's process starts fast.
"""
