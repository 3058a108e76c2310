"""A workshop room on one box: JupyterHub serving the lessons to a class over the LAN.

``llminspect room`` (``make room``) builds the room's folder (``building``), writes JupyterHub's
configuration from one plan (``plan``, ``hub``), and starts the hub. Learners sign in with a
name, their own password and the class code (``authenticator``, ``accounts``); each gets a
system account, a private home with their own copy of the lessons (``learners``) and a memory
limit (``memory``), and runs the room's environment (``spawner``). ``kubernetes`` turns the same
plan into a Zero to JupyterHub values file for a class that outgrows one box.
"""
