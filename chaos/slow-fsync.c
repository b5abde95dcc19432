/*
 * slow-fsync: an LD_PRELOAD library that makes fsync and fdatasync slow on demand, for the chaos
 * runner's "slow disk" fault (chaos/README.md). Before each call it reads a delay in milliseconds
 * from the file named by SCTEC_SLOW_FSYNC_FILE (absent, empty or 0: no delay; at most 10000) and
 * sleeps that long, then makes the real call. Reading the file on every call lets the runner
 * change the delay while the node runs; a few microseconds per fsync is nothing next to a real one.
 * The file may instead say "enospc" or "eio": then each call fails at once with that errno, as a
 * disk that cannot write back the data does (node/persistence/level-durable-log.test.ts uses it:
 * a failed fsync must stop the node, not be waited out like a full disk).
 *
 * Built by the runner with the system's C compiler: cc -shared -fPIC -O2 -o slow-fsync.so slow-fsync.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* delay_ms reads the control file: a delay in ms (0 to 10000), or -errno for a call that must fail. */
static long delay_ms(void) {
  const char *path = getenv("SCTEC_SLOW_FSYNC_FILE");
  if (path == NULL) return 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char text[32];
  ssize_t length = read(fd, text, sizeof text - 1);
  close(fd);
  if (length <= 0) return 0;
  text[length] = '\0';
  if (strncmp(text, "enospc", 6) == 0) return -ENOSPC;
  if (strncmp(text, "eio", 3) == 0) return -EIO;
  long ms = strtol(text, NULL, 10);
  if (ms < 0) return 0;
  return ms > 10000 ? 10000 : ms;
}

static void pause_ms(long ms) {
  struct timespec left = { ms / 1000, (ms % 1000) * 1000000L };
  /* Bounded: each interrupted sleep resumes with what is left, so the loop ends within ms. */
  while (nanosleep(&left, &left) != 0 && errno == EINTR) {
  }
}

int fsync(int fd) {
  static int (*real_fsync)(int) = NULL;
  if (real_fsync == NULL) real_fsync = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
  long ms = delay_ms();
  if (ms < 0) {
    errno = (int)-ms;
    return -1;
  }
  if (ms > 0) pause_ms(ms);
  return real_fsync(fd);
}

int fdatasync(int fd) {
  static int (*real_fdatasync)(int) = NULL;
  if (real_fdatasync == NULL) real_fdatasync = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
  long ms = delay_ms();
  if (ms < 0) {
    errno = (int)-ms;
    return -1;
  }
  if (ms > 0) pause_ms(ms);
  return real_fdatasync(fd);
}
