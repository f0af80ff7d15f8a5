"""gan_fast.cuda_graph: capture a Python callable that launches gan_fast ops on CuPy arrays
as one CUDA graph, and replay it with one launch.

    from gan_fast.cuda_graph import capture
    step = cupy.ones(1, dtype=cupy.int64)          # the step counter lives on the device
    def one_step():
        ops.random_normal(z, seed, step)
        ops.adam_step(params, grads, m, v, step, lr)
        step += 1                                  # in-place CuPy elementwise op
    one_step()                                     # warm-up, eagerly (rule 5)
    graph = capture(one_step)
    for _ in range(n):
        graph.launch()                             # asynchronous, on graph.stream
    graph.synchronize()

Rules a captured callable must follow (a capture records kernel launches with their
arguments; nothing runs until a replay, and every replay runs exactly what was recorded):

1. Every array it touches exists before the capture and outlives the graph: the graph holds
   raw device pointers. capture(..., keep=arrays) stores references on the graph object.
2. Every output is passed in (out=, dx=, dw=, ...): an op that allocates its output calls
   cupy.empty, whose memory-pool block is fixed into the graph at capture time and may be
   handed to someone else afterwards. capture() installs an allocator that raises
   CaptureError on any CuPy memory-pool allocation during the capture. (gan_fast's own
   scratch memory, conv2d's columns and split-K partial sums, is allocated and freed
   stream-ordered inside the op with cudaMallocAsync/cudaFreeAsync, which a capture records
   as graph memory nodes owned by the graph: allowed.)
3. Whatever changes from step to step lives in device memory and is updated inside the
   graph: per-step arguments (adam_step's step, the dropout family's step, random_normal's
   and batch_indices' step) are passed as one-element int64 CuPy arrays (StepArg, read by
   the kernels when they run); a Python int is frozen at capture. Counters are advanced by
   an in-place CuPy elementwise op in the graph (`counter += 1` allocates nothing).
4. Nothing reads results back or synchronises inside: no .get(), float(x), bool(x),
   printing an array, and no CuPy call that returns a new array (reductions, fancy
   indexing, arithmetic that is not in place): they allocate or copy to the host. Losses
   are written into device buffers by the ops and read after a replay, asynchronously if
   need be. gan_fast ops never synchronise; their argument checks read only shapes,
   dtypes and pointers.
5. Run the callable once eagerly before capturing it, on the same device: CuPy compiles its
   elementwise kernels on first use and CUDA loads gan_fast's kernels lazily, neither of
   which should happen inside a capture. (Capturing runs nothing, so the state is exactly
   what the warm-up left.)
6. Replays run in order on graph.stream (a non-blocking CuPy stream of its own unless one
   is given). Work queued on the current stream before capture() is waited for by that
   stream. Order other streams with events, or call graph.synchronize().
7. A graph is specific to its shapes: a different batch size (an epoch's last, partial
   batch) needs a graph of its own.
CUDA only: NumPy (CPU) ops are not captured; they run at once.
"""
from __future__ import annotations

import contextlib

__all__ = ["CaptureError", "CapturedGraph", "capture"]


class CaptureError(RuntimeError):
    """A captured callable broke a rule of gan_fast.cuda_graph (e.g. allocated an array)."""


class CapturedGraph:
    """A captured CUDA graph: launch() replays it on `stream` (asynchronously)."""

    def __init__(self, graph, stream, keep=()):
        self._graph = graph
        self.stream = stream
        self.keep = tuple(keep)   # arrays the graph's kernels read and write (rule 1)

    def launch(self, stream=None):
        """Replay the captured work once, on `stream` (default: self.stream)."""
        self._graph.launch(self.stream if stream is None else stream)

    def synchronize(self):
        """Wait until every replay launched on self.stream has finished."""
        self.stream.synchronize()


def _refuse_allocation(size):
    raise CaptureError(
        f"an array of {size} bytes was allocated from CuPy's memory pool during a CUDA graph "
        "capture; pass every output of every op (out=, dx=, ...) and use in-place CuPy "
        "operations only (gan_fast.cuda_graph, rule 2)")


def capture(fn, stream=None, keep=()):
    """Capture fn() (which launches gan_fast ops and in-place CuPy ops) into a CUDA graph.

    fn runs once, under stream capture on `stream` (default: a new non-blocking CuPy
    stream), made CuPy's current stream for the duration; its kernels are recorded, not
    run. Any CuPy memory-pool allocation inside raises CaptureError, and so does an
    invalidated capture (e.g. a synchronising call); the stream is never left capturing.
    Returns a CapturedGraph. See the module docstring for the rules fn must follow.
    """
    import cupy

    if stream is None:
        stream = cupy.cuda.Stream(non_blocking=True)
    # Whatever the current stream has queued (the warm-up, the inputs' uploads) comes
    # first: the wait is recorded before the capture begins, so it is not part of the graph.
    stream.wait_event(cupy.cuda.get_current_stream().record())
    with stream:
        stream.begin_capture()
        try:
            with cupy.cuda.using_allocator(_refuse_allocation):
                fn()
        except BaseException:
            with contextlib.suppress(Exception):  # an invalidated capture raises here too
                stream.end_capture()
            raise
        try:
            graph = stream.end_capture()
        except Exception as err:
            raise CaptureError(f"the CUDA graph capture failed: {err} (a synchronising or "
                               "otherwise uncapturable call inside; gan_fast.cuda_graph "
                               "rule 4)") from err
    return CapturedGraph(graph, stream, keep)
