// fifo PRIO CMD [ARGS...]: runs CMD as a SCHED_FIFO thread of priority PRIO
// (busybox has no chrt), so guest scenarios can start real-time hogs.
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: fifo PRIO CMD [ARGS...]\n");
    return 2;
  }
  const int prio = atoi(argv[1]);
  if (prio < 1 || prio > 99) {
    fprintf(stderr, "fifo: PRIO must be 1..99\n");
    return 2;
  }
  sched_param sp = {.sched_priority = prio};
  if (sched_setscheduler(0, SCHED_FIFO, &sp) != 0) {
    fprintf(stderr, "fifo: sched_setscheduler: %s\n", strerror(errno));
    return 1;
  }
  execvp(argv[2], argv + 2);
  fprintf(stderr, "fifo: %s: %s\n", argv[2], strerror(errno));
  return 127;
}
