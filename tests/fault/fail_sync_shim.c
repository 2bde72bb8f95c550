// LD_PRELOAD shim for the disk-error test: while the file named by
// TXMQ_TEST_FAIL_SYNC_IF exists, fsync and fdatasync fail with EIO, as they
// do when a disk reports a write error. Everything else passes through.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

static int failing_now(void) {
  const char* trigger = getenv("TXMQ_TEST_FAIL_SYNC_IF");
  return trigger != NULL && access(trigger, F_OK) == 0;
}

int fdatasync(int fd) {
  static int (*real)(int) = NULL;
  if (failing_now()) {
    errno = EIO;
    return -1;
  }
  if (real == NULL) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
  return real(fd);
}

int fsync(int fd) {
  static int (*real)(int) = NULL;
  if (failing_now()) {
    errno = EIO;
    return -1;
  }
  if (real == NULL) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
  return real(fd);
}
