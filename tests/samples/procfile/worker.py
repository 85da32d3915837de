"""A worker process: ticks until SIGTERM, then says so and finishes its "job" cleanly."""

import signal
import sys
import time

stopping = False


def stop(signum, frame):
    global stopping
    stopping = True


signal.signal(signal.SIGTERM, stop)
print("worker started", flush=True)
while not stopping:
    time.sleep(0.1)
print("worker got SIGTERM; finishing the job", flush=True)
time.sleep(0.3)
print("worker done", flush=True)
sys.exit(0)
