"""Helpers shared by the test suites: sample media and reference peers (nginx-rtmp).

Import as `tests.support.media` / `tests.support.nginx_rtmp`; this needs the repository
root on `sys.path` (pytest `pythonpath = .`, or `sys.path.insert` in the test module,
as long as the pytest configuration does not do it).
"""
