"""Interactive labs: widgets that run a model as the learner turns a knob."""
