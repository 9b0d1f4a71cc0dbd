// runas UID CMD [ARGS...]: drops to UID (and GID UID) and runs CMD, so guest
// scenarios can check what our binaries tell an unprivileged user.
#include <grp.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: runas UID CMD [ARGS...]\n");
    return 2;
  }
  int uid = atoi(argv[1]);
  if (uid <= 0) {
    fprintf(stderr, "runas: UID must be a positive number\n");
    return 2;
  }
  if (setgroups(0, nullptr) != 0 || setgid(uid) != 0 || setuid(uid) != 0) {
    perror("runas: dropping privileges");
    return 1;
  }
  execvp(argv[2], argv + 2);
  fprintf(stderr, "runas: %s: %s\n", argv[2], strerror(errno));
  return 127;
}
