"""synthdistill-serve: one student behind HTTP, micro-batched, deferring what it is unsure of to the teacher."""
