// LD_PRELOAD shim for the disk-error test: while the file named by
// TXMQ_TEST_FAIL_SYNC_IF exists, fsync and fdatasync fail with EIO, as they
// do when a disk reports a write error. Everything else passes through.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

static int (*real_fdatasync)(int);
static int (*real_fsync)(int);

// Resolved once, before any thread of the process runs.
__attribute__((constructor)) static void resolve_real_functions(void) {
  real_fdatasync = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
  real_fsync = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
}

static int failing_now(void) {
  const char* trigger = getenv("TXMQ_TEST_FAIL_SYNC_IF");
  return trigger != NULL && access(trigger, F_OK) == 0;
}

int fdatasync(int fd) {
  if (failing_now()) {
    errno = EIO;
    return -1;
  }
  return real_fdatasync(fd);
}

int fsync(int fd) {
  if (failing_now()) {
    errno = EIO;
    return -1;
  }
  return real_fsync(fd);
}
