"""The stages of a run, each a function over a :class:`~harness.stages.context.RunContext`.

``build`` (artifacts and TensorRT engines) -> ``score`` (the accuracy pass) -> ``measure``
(latency, memory, energy of the same artifact) -> ``population`` (the other seeds, scored only)
-> ``finalize`` (bias, Pareto front, selection, notes, card). :mod:`harness.pipeline` runs them
in order; an executor (:mod:`harness.stages.executor`, :mod:`harness.fleet.executor`) decides
where the (variant, runtime) jobs of the score and measure stages run.
"""
