"""The Python side of chatglm.ts's code interpreter. It runs inside bubblewrap (see sandbox-command.ts).

Protocol, one JSON object per line:
  requests on stdin:  {"type": "run", "id": N, "code": "...", "timeout": SECONDS}
                      {"type": "interrupt", "id": N, "reason": "timeout" | "abort"}
  replies on fd 3:    {"type": "ready", "python": "3.11.2", "numpy": "...", "matplotlib": "..."}
                      {"type": "fatal", "message": "..."}
                      {"type": "result", "id": N, "text": "...", "error": {...} | null,
                       "images": ["<base64 PNG>", ...], "timedOut": bool, "truncated": bool}
Replies go to fd 3, not stdout, so whatever the cell prints cannot pass for a reply.

Usage: python3 -I -B -u runner.py MEMORY_BYTES MAX_PROCESSES MAX_FILE_BYTES MAX_OUTPUT_CHARS
"""

import resource
import sys


def set_limits(memory_bytes, max_processes, max_file_bytes):
    # Set before anything else is imported, so the imports below already run under the limits and a
    # limit too small for numpy shows up at start-up rather than in the first cell.
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_NPROC, (max_processes, max_processes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


MEMORY_BYTES, MAX_PROCESSES, MAX_FILE_BYTES, MAX_OUTPUT_CHARS = (int(a) for a in sys.argv[1:5])
set_limits(MEMORY_BYTES, MAX_PROCESSES, MAX_FILE_BYTES)

import ast  # noqa: E402
import base64  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import linecache  # noqa: E402
import os  # noqa: E402
import queue  # noqa: E402
import signal  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
import types  # noqa: E402

RUNNER_FILE = __file__
RUNNER_PID = os.getpid()
SELF_PID = str(RUNNER_PID)
PROTOCOL = os.fdopen(3, 'w', encoding='utf-8', buffering=1)
PROTOCOL_LOCK = threading.Lock()
# Requests move off fd 0, which becomes /dev/null: a cell calling input() gets EOFError instead of
# reading the next request.
REQUESTS_IN = os.fdopen(os.dup(0), 'r', encoding='utf-8')
_null = os.open('/dev/null', os.O_RDONLY)
os.dup2(_null, 0)
os.close(_null)


def send(message):
    with PROTOCOL_LOCK:
        PROTOCOL.write(json.dumps(message, ensure_ascii=True) + '\n')
        PROTOCOL.flush()


# A file larger than RLIMIT_FSIZE would otherwise kill the whole interpreter with SIGXFSZ; ignored,
# the write fails with OSError(EFBIG) inside the cell.
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

try:
    import numpy
    import matplotlib
    matplotlib.use('Agg')
except BaseException as exc:  # noqa: BLE001 - any failure here means the sandbox is unusable
    send({'type': 'fatal', 'message': 'cannot import numpy and matplotlib in the sandbox (%s: %s); '
          'install the Debian packages python3-numpy and python3-matplotlib' % (type(exc).__name__, exc)})
    sys.exit(1)


class TimeoutError(BaseException):  # noqa: A001
    """Raised in the cell when it runs past its time limit. A BaseException (not Python's own
    TimeoutError, an Exception) so that a cell's `except Exception:` does not swallow it; the user's
    namespace still sees the builtin TimeoutError."""


class Cell:
    """What the signal handlers need to know about the cell being run."""

    def __init__(self):
        self.active = False
        self.id = -1
        self.timeout = 0.0
        self.timed_out = False
        # The last exception a signal handler raised, and the one waiting to be raised again.
        self.raised = None
        self.rearmed = None


CELL = Cell()
ALARM_REPEAT = 0.25
MAIN_THREAD = threading.main_thread().ident
REQUESTS = queue.Queue()


def kill_strays():
    """Ends every other process in the sandbox's PID namespace (what a cell started) and waits until
    they are gone, so that none outlives its cell or competes with the next one."""
    try:
        os.kill(-1, signal.SIGKILL)
    except OSError:
        return  # nothing else to signal
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            break
        except InterruptedError:
            continue
    # Orphans belong to bwrap's init (PID 1), which reaps them a moment later.
    for _ in range(200):
        if all(name in ('1', SELF_PID) for name in os.listdir('/proc') if name.isdigit()):
            break
        time.sleep(0.005)


def is_cell_frame(frame):
    return frame.f_code.co_filename.startswith('<cell-')


def raise_again_at_next_line(unraisable):
    """sys.unraisablehook. A signal is often handled inside a callback whose exceptions Python
    prints and drops: os.fork runs its at-fork hooks there, so a cell looping on fork would never
    see its TimeoutError. When that happens to ours, a trace function raises it again, once, at the
    next line the cell's own code runs."""
    exc = unraisable.exc_value
    if not (CELL.active and exc is not None and exc is CELL.raised):
        sys.__unraisablehook__(unraisable)
        return

    def tracer(frame, event, arg):
        if CELL.active and CELL.rearmed is exc and is_cell_frame(frame):
            CELL.rearmed = None
            sys.settrace(None)
            raise exc
        return tracer

    CELL.rearmed = exc
    frame = sys._getframe()
    while frame is not None:
        if is_cell_frame(frame):
            frame.f_trace = tracer
        frame = frame.f_back
    sys.settrace(tracer)


def raise_in_cell(exc):
    CELL.raised = exc
    raise exc


def on_alarm(signum, frame):
    if CELL.active:
        CELL.timed_out = True
        # Processes the cell forked would otherwise compete with this one for the CPU it needs to
        # report (a fork bomb leaves it a sliver).
        kill_strays()
        raise_in_cell(TimeoutError('the cell ran past its time limit of %g s' % CELL.timeout))


def on_interrupt(signum, frame):
    if CELL.active:
        kill_strays()
        if CELL.timed_out:
            exc = TimeoutError('the cell ran past its time limit of %g s and was interrupted' % CELL.timeout)
        else:
            exc = KeyboardInterrupt('the run was cancelled')
        raise_in_cell(exc)


def read_requests():
    """Reads requests on its own thread so that an interrupt can reach a cell that is still running."""
    for line in REQUESTS_IN:
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if not isinstance(message, dict):
            continue
        if message.get('type') == 'interrupt':
            if CELL.active and message.get('id') == CELL.id:
                if message.get('reason') == 'timeout':
                    CELL.timed_out = True
                signal.pthread_kill(MAIN_THREAD, signal.SIGINT)
        else:
            REQUESTS.put(message)
    REQUESTS.put(None)


class Output(io.TextIOBase):
    """stdout and stderr of a cell, in the order written, kept up to MAX_OUTPUT_CHARS."""

    def __init__(self):
        self.parts = []
        self.size = 0
        self.truncated = False

    def writable(self):
        return True

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError('write() argument must be str, not %s' % type(text).__name__)
        room = MAX_OUTPUT_CHARS - self.size
        if len(text) > room:
            self.truncated = True
            text = text[:max(room, 0)]
        if text:
            self.parts.append(text)
            self.size += len(text)
        return len(text)

    def text(self):
        return ''.join(self.parts)


class StreamProxy(io.TextIOBase):
    """Stays installed as sys.stdout/sys.stderr for the life of the process, and writes to the
    current cell's Output, so code that kept a reference to sys.stdout still reaches its cell."""

    def __init__(self, name):
        self.name = name
        self.target = None

    def writable(self):
        return True

    @property
    def encoding(self):
        return 'utf-8'

    def isatty(self):
        return False

    def write(self, text):
        if self.target is None:
            return len(text)
        return self.target.write(text)

    @property
    def buffer(self):
        return BinaryProxy(self)


class BinaryProxy(io.RawIOBase):
    """sys.stdout.buffer, for code that writes bytes."""

    def __init__(self, text_stream):
        self.text_stream = text_stream

    def writable(self):
        return True

    def write(self, data):
        self.text_stream.write(bytes(data).decode('utf-8', errors='replace'))
        return len(data)


# What reaches file descriptors 1 and 2 directly (a subprocess, C code, sys.__stdout__) lands in a
# file and is read back at the end of each cell, after the cell's own prints, in the same reply.
RAW_OUTPUT = '/tmp/.chatglm-raw-output'
_raw = os.open(RAW_OUTPUT, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
os.dup2(_raw, 1)
os.dup2(_raw, 2)
os.close(_raw)
# Its own descriptor, so emptying the file never touches whatever a cell put on fd 1.
RAW_READER = open(RAW_OUTPUT, 'r+b', buffering=0)


def take_raw_output(output):
    try:
        data = RAW_READER.read(MAX_OUTPUT_CHARS * 4 + 4)
        os.ftruncate(RAW_READER.fileno(), 0)
        RAW_READER.seek(0)
    except OSError:
        return
    if data:
        output.write(data.decode('utf-8', errors='replace'))


STDOUT = StreamProxy('<stdout>')
STDERR = StreamProxy('<stderr>')
sys.stdout = STDOUT
sys.stderr = STDERR
# The cells share the globals of a fresh __main__ module (the runner's own is set aside), so that
# classes they define can be pickled and `import __main__` finds them.
MAIN_MODULE = types.ModuleType('__main__')
sys.modules['__main__'] = MAIN_MODULE
NAMESPACE = MAIN_MODULE.__dict__


def compile_cell(code, filename):
    """Returns (body, last_expression): the value of a final expression is shown, as in Jupyter."""
    tree = ast.parse(code, filename, 'exec')
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    body = compile(tree, filename, 'exec')
    return body, (compile(last, filename, 'eval') if last is not None else None)


def user_traceback(exc):
    """The traceback without the runner's own frames (its exec at the top, its signal handlers at
    the bottom)."""
    summary = traceback.TracebackException(type(exc), exc, exc.__traceback__)
    summary.stack = traceback.StackSummary.from_list(
        [frame for frame in summary.stack if frame.filename != RUNNER_FILE])
    return ''.join(summary.format())


def describe(exc):
    try:
        message = str(exc)
    except BaseException:  # noqa: BLE001 - a user exception's __str__ may itself fail
        message = '<unprintable %s>' % type(exc).__name__
    try:
        tb_text = user_traceback(exc)
    except BaseException:  # noqa: BLE001
        tb_text = '%s: %s\n' % (type(exc).__name__, message)
    return {'name': type(exc).__name__, 'message': message, 'traceback': tb_text}


def collect_figures():
    """Every open matplotlib figure as PNG, then closed, as an inline Jupyter backend would."""
    pyplot = sys.modules.get('matplotlib.pyplot')
    if pyplot is None:
        return []
    images = []
    for number in pyplot.get_fignums():
        figure = pyplot.figure(number)
        buffer = io.BytesIO()
        figure.savefig(buffer, format='png')
        images.append(base64.b64encode(buffer.getvalue()).decode('ascii'))
    pyplot.close('all')
    return images


SHOWN = []


def install_show():
    """plt.show() under Agg only warns; here it hands the figures over, as in a notebook."""
    pyplot = sys.modules.get('matplotlib.pyplot')
    if pyplot is not None and getattr(pyplot.show, '__module__', None) != __name__:
        def show(*args, **kwargs):
            SHOWN.extend(collect_figures())
        show.__module__ = __name__
        pyplot.show = show


def cell_body(compiled, output):
    body, last = compiled
    exec(body, NAMESPACE)
    install_show()
    if last is not None:
        value = eval(last, NAMESPACE)
        install_show()
        if value is not None:
            NAMESPACE['_'] = value
            output.write(repr(value) + '\n')


def run_cell(request):
    cell_id = request.get('id')
    code = request.get('code')
    timeout = request.get('timeout')
    if not isinstance(cell_id, int) or not isinstance(code, str) or not isinstance(timeout, (int, float)):
        return
    filename = '<cell-%d>' % cell_id
    # Registered so tracebacks quote the cell's lines.
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    output = Output()
    STDOUT.target = output
    STDERR.target = output
    del SHOWN[:]
    error = None
    images = []
    # Re-installed every cell: a cell may have replaced them.
    sys.unraisablehook = raise_again_at_next_line
    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGINT, on_interrupt)
    CELL.id = cell_id
    CELL.timeout = float(timeout)
    CELL.timed_out = False
    CELL.raised = None
    CELL.rearmed = None
    try:
        try:
            CELL.active = True
            # Repeats, so a cell that catches the TimeoutError and carries on gets it again.
            signal.setitimer(signal.ITIMER_REAL, CELL.timeout, ALARM_REPEAT)
            try:
                try:
                    compiled = compile_cell(code, filename)
                except SyntaxError as exc:
                    # No frames: Python's own rendering, with the caret under the column.
                    exc.__traceback__ = None
                    raise
                cell_body(compiled, output)
            finally:
                if os.getpid() != RUNNER_PID:
                    # A process the cell forked has returned into the runner: it must not answer.
                    os._exit(0)
            kill_strays()
            images = collect_figures()
        except BaseException as exc:  # noqa: BLE001 - everything a cell raises is reported
            if os.getpid() != RUNNER_PID:
                os._exit(0)
            CELL.active = False
            kill_strays()
            error = describe(exc)
            try:
                images = collect_figures()
            except BaseException:  # noqa: BLE001
                pass
    except BaseException as exc:  # noqa: BLE001 - a late signal inside the handler above
        error = error or describe(exc)
    CELL.active = False
    signal.setitimer(signal.ITIMER_REAL, 0)
    sys.settrace(None)
    CELL.raised = None
    CELL.rearmed = None
    STDOUT.target = None
    STDERR.target = None
    kill_strays()
    take_raw_output(output)
    send({
        'type': 'result',
        'id': cell_id,
        'text': output.text(),
        'truncated': output.truncated,
        'error': error,
        'images': SHOWN + images,
        'timedOut': CELL.timed_out,
    })
    del SHOWN[:]


def main():
    sys.unraisablehook = raise_again_at_next_line
    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGINT, on_interrupt)
    threading.Thread(target=read_requests, name='requests', daemon=True).start()
    send({'type': 'ready', 'python': sys.version.split()[0], 'numpy': numpy.__version__,
          'matplotlib': matplotlib.__version__})
    while True:
        request = REQUESTS.get()
        if request is None:
            return
        if request.get('type') == 'run':
            run_cell(request)


main()
