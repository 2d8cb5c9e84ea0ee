#!/usr/bin/env python3
"""Runs a command on a pseudo-terminal and answers its prompts, as a person at a keyboard would.

    pty_run.py [--answer PROMPT TEXT]... -- COMMAND [ARG]...

Each TEXT (plus Enter) is typed once PROMPT has appeared in the output, in order. Prints the whole
terminal transcript (what the command wrote, and whatever the terminal echoed) and exits with the
command's status; 124 when it does not finish within 30 s.
"""
import os
import pty
import select
import sys
import time


def main():
    args = sys.argv[1:]
    answers = []
    while args and args[0] == "--answer":
        answers.append((args[1].encode(), args[2].encode() + b"\n"))
        args = args[3:]
    if not args or args[0] != "--":
        sys.exit("usage: pty_run.py [--answer PROMPT TEXT]... -- COMMAND [ARG]...")
    command = args[1:]

    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(command[0], command)

    transcript = b""
    searched_from = 0
    deadline = time.monotonic() + 30
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            sys.stdout.write(transcript.decode(errors="replace"))
            print("\npty_run: timed out; waiting for: %r" % (answers[0][0] if answers else None))
            sys.exit(124)
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the command closed the terminal
            break
        if not chunk:
            break
        transcript += chunk
        if answers and answers[0][0] in transcript[searched_from:]:
            searched_from = transcript.index(answers[0][0], searched_from) + len(answers[0][0])
            os.write(fd, answers[0][1])
            answers.pop(0)
    _, status = os.waitpid(pid, 0)
    sys.stdout.write(transcript.decode(errors="replace"))
    sys.exit(os.waitstatus_to_exitcode(status))


if __name__ == "__main__":
    main()
