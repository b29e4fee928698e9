"""Tasks: what is specific to one kind of training (model, data, optimizer, steps, validation).

`Task` declares the hooks the shared loop (`svf_tf.runs.trainer`) calls;
`FewShotTask` (episodic meta-training) and `BaseLearnerTask` (BAM's stage 1)
are siblings implementing it.
"""
