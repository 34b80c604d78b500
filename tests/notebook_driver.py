#!/usr/bin/env python3
"""A Jupyter client for the notebook tests (tests/notebooks.rs).

It starts a real kernel with jupyter_client and speaks the Jupyter protocol
to it the way a front end does; the Rust test decides what to run and what
to answer. One JSON object a line each way:

  test -> driver (stdin)
    {"op": "execute", "code": "...", "allow_stdin": true, "timeout": 900}
    {"op": "input", "value": "..."}       the answer to an input_request
    {"op": "shutdown"}
  driver -> test (stdout)
    {"event": "ready", "kernel": "..."}
    {"event": "stream", "name": "stdout", "text": "...", "t": 1.2}
    {"event": "input_request", "prompt": "...", "password": true, "t": 1.3}
    {"event": "execute_result" | "display_data", "data": {...}, "t": ...}
    {"event": "error", "ename": "...", "evalue": "...", "traceback": [...]}
    {"event": "done", "status": "ok" | "error" | "timeout", "elapsed": 1.5}
    {"event": "fatal", "message": "..."}

"t" is seconds since the execute_request was sent. The kernel runs with this
process's environment and working directory (the test sets both). When the
test goes away (stdin closes) or --deadline passes, the kernel's whole
process group is killed: no kernel outlives a test run.
"""

import argparse
import json
import os
import queue
import sys
import tempfile
import threading
import time

try:
    from jupyter_client import KernelManager
    from jupyter_client.kernelspec import KernelSpecManager
except ImportError as e:  # The test turns this into a failure, never a skip.
    print(json.dumps({"event": "fatal", "message": f"jupyter_client is missing ({e}); run: python3 -m pip install 'jupyter_client>=8,<9'"}), flush=True)
    sys.exit(2)


def emit(**event):
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


STDIN_CLOSED = threading.Event()
# Seconds without a message for a finished cell before it counts as done.
SETTLE = 0.3


def stdin_reader(commands):
    for line in sys.stdin:
        line = line.strip()
        if line:
            commands.put(json.loads(line))
    # EOF. Commands already sent still run (a piped script ends with
    # "shutdown"); with none left, the test is gone and so is the kernel.
    STDIN_CLOSED.set()


class Gone(Exception):
    pass


def abandoned(commands):
    return STDIN_CLOSED.is_set() and commands.empty()


def next_command(commands, deadline):
    while True:
        if time.monotonic() > deadline:
            raise Gone("deadline")
        try:
            return commands.get(timeout=0.2)
        except queue.Empty:
            if abandoned(commands):
                raise Gone("stdin closed")


def execute(kc, command, commands, deadline):
    """Runs one cell; streams its messages as events until the kernel is idle."""
    start = time.monotonic()
    timeout = float(command.get("timeout", 900))
    cell_deadline = min(deadline, start + timeout)
    msg_id = kc.execute(command["code"], allow_stdin=bool(command.get("allow_stdin", True)), stop_on_error=False)
    status, replied, idle = None, False, False
    # evcxr forwards the cell's stdout and stderr lines from a thread of
    # their own, and waits only for stdout before it replies: an error from
    # `?` (printed on stderr) can come after the reply. A front end shows such
    # late lines in the cell's output; so does this client, for a short while.
    settle_until = None
    while settle_until is None or time.monotonic() < settle_until:
        if replied and idle and settle_until is None:
            settle_until = time.monotonic() + SETTLE
        if time.monotonic() > cell_deadline:
            emit(event="done", status="timeout", elapsed=time.monotonic() - start)
            return
        # The test may go away while a cell runs.
        if abandoned(commands):
            raise Gone("stdin closed")
        got = False
        for channel in (kc.iopub_channel, kc.stdin_channel, kc.shell_channel):
            try:
                msg = channel.get_msg(timeout=0)
            except queue.Empty:
                continue
            got = True
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content, t = msg["msg_type"], msg["content"], time.monotonic() - start
            if settle_until is not None:
                settle_until = time.monotonic() + SETTLE
            if kind == "stream":
                emit(event="stream", name=content["name"], text=content["text"], t=t)
            elif kind in ("execute_result", "display_data"):
                emit(event=kind, data=content.get("data", {}), t=t)
            elif kind == "error":
                emit(event="error", ename=content.get("ename", ""), evalue=content.get("evalue", ""), traceback=content.get("traceback", []), t=t)
            elif kind == "status" and content.get("execution_state") == "idle":
                idle = True
            elif kind == "input_request":
                emit(event="input_request", prompt=content.get("prompt", ""), password=bool(content.get("password")), t=t)
                answer = next_command(commands, cell_deadline)
                if answer.get("op") != "input":
                    raise Gone(f"expected an input answer, got {answer}")
                kc.input(answer["value"])
            elif kind == "execute_reply":
                replied, status = True, content.get("status")
        if not got:
            time.sleep(0.02)
    emit(event="done", status=status, elapsed=time.monotonic() - start)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kernel", required=True, help="path of evcxr_jupyter")
    parser.add_argument("--deadline", type=float, default=3600, help="seconds before everything is stopped")
    parser.add_argument("--kernel-log", default=os.devnull, help="file for the kernel's own stdout and stderr")
    args = parser.parse_args()
    deadline = time.monotonic() + args.deadline

    commands = queue.Queue()
    threading.Thread(target=stdin_reader, args=(commands,), daemon=True).start()

    # A kernel spec of our own: the test names the exact evcxr_jupyter, and
    # nothing installed in the user's Jupyter directories is used.
    spec_root = tempfile.mkdtemp(prefix="evcxr-spec-")
    spec_dir = os.path.join(spec_root, "evcxr-test")
    os.makedirs(spec_dir)
    with open(os.path.join(spec_dir, "kernel.json"), "w") as f:
        json.dump({"argv": [args.kernel, "--control_file", "{connection_file}"], "display_name": "Rust (evcxr, test)", "language": "rust"}, f)
    ksm = KernelSpecManager()
    ksm.kernel_dirs = [spec_root]
    km = KernelManager(kernel_name="evcxr-test", kernel_spec_manager=ksm)
    # The kernel's own output must not mix with the events on our stdout.
    log = open(args.kernel_log, "ab")
    km.start_kernel(env=dict(os.environ), cwd=os.getcwd(), stdout=log, stderr=log)
    kc = None
    try:
        kc = km.blocking_client()
        kc.start_channels()
        kc.wait_for_ready(timeout=120)
        emit(event="ready", kernel=args.kernel)
        while True:
            command = next_command(commands, deadline)
            op = command.get("op")
            if op == "execute":
                execute(kc, command, commands, deadline)
            elif op == "shutdown":
                break
            else:
                emit(event="fatal", message=f"unknown command {command}")
    except Gone as e:
        emit(event="fatal", message=f"stopping: {e}")
    except Exception as e:  # Reported to the test, which fails with it.
        emit(event="fatal", message=f"{type(e).__name__}: {e}")
    finally:
        if kc is not None:
            kc.stop_channels()
        # now=True kills the kernel's process group (kernel, evcxr's child,
        # any cargo still building) instead of waiting for a polite exit.
        km.shutdown_kernel(now=True)
        try:
            os.remove(os.path.join(spec_dir, "kernel.json"))
            os.rmdir(spec_dir)
            os.rmdir(spec_root)
        except OSError:
            pass


if __name__ == "__main__":
    main()
