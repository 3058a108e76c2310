"""Teaching helpers: exercises, the toy task, the instructor's command line."""
