"""The monthly report of a platform or a group (docs/groups-and-reports.md): its figures
(build.py), its formats (render.py, pdf.py) and the monthly job (job.py)."""
