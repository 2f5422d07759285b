/* SPDX-License-Identifier: Apache-2.0
 *
 * test_faults_diskfull.c (label integration): a peer whose disk fills up.
 *
 * The test enters a private mount namespace (unshare(CLONE_NEWNS), as
 * root), so the tmpfs it mounts is seen only by itself and its children
 * and vanishes with them whatever happens. peer1.org2's data dir
 * (pdata3) is a 160 MiB tmpfs; the rest is the peer harness's network. With
 * a load running through peer0.org1 and peer0.org2:
 *
 *   1. a filler file takes every free byte of the tmpfs;
 *   2. the peer must stop committing with a clear error: an ERROR line in
 *      its log naming the failed commit, and either /healthz answering 503
 *      while it stays up, or a clean exit (status 2, "stopping"), never a
 *      crash (signal) and never a height beyond what it could store; the
 *      other peers go on committing;
 *   3. the filler is removed; a peer that exited is started again (what a
 *      supervisor does); it must open its ledger (no corruption: the
 *      savepoint and block hashes check at open), catch up, and end with
 *      the same blocks (header hashes, validation codes) and the same state
 *      as the others.
 *
 * Exit 77 (skipped, with the reason) when the mount namespace or the
 * tmpfs cannot be had (not root, no CAP_SYS_ADMIN).
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/base/alloc.h"
#include "tests/faults/fxnet.h"
#include "tests/integration/peer/harness.h"

#define VICTIM 3
#define TMPFS_MB 160

static pn_net_t *g_net;
static fx_load_t *g_load;
static char g_mnt[400];
static bool g_mounted;

static const char *envs(const char *n) {
  const char *v = getenv(n);
  return v ? v : "";
}

/* GET path from 127.0.0.1:port; the HTTP status, or -1. */
static int http_status(uint16_t port, const char *path) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  if (s < 0) return -1;
  struct timeval tv = {3, 0};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int code = -1;
  if (connect(s, (struct sockaddr *)&a, sizeof(a)) == 0) {
    char req[256], rep[512];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
    if (write(s, req, (size_t)n) == n) {
      ssize_t k = read(s, rep, sizeof(rep) - 1);
      if (k > 12) {
        rep[k] = '\0';
        if (strncmp(rep, "HTTP/1.", 7) == 0) code = atoi(rep + 9);
      }
    }
  }
  close(s);
  return code;
}

static uint64_t free_bytes(const char *dir) {
  struct statvfs v;
  if (statvfs(dir, &v) != 0) return 0;
  return (uint64_t)v.f_bavail * v.f_frsize;
}

/* Writes zeros to path until the file system is full. */
static uint64_t fill(const char *path) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return 0;
  static char z[65536];
  uint64_t n = 0;
  for (;;) {
    ssize_t k = write(fd, z, sizeof(z));
    if (k <= 0) break;
    n += (uint64_t)k;
  }
  for (;;) { /* the last partial page */
    ssize_t k = write(fd, z, 512);
    if (k <= 0) break;
    n += (uint64_t)k;
  }
  close(fd);
  return n;
}

static void test_disk_full_then_space_returns(void **state) {
  (void)state;
  char filler[460];
  snprintf(filler, sizeof(filler), "%s/filler", g_mnt);
  uint64_t h0 = fx_peer_height(g_net, VICTIM);
  int errs0 = pn_log_count(g_net, VICTIM, "ERROR");
  uint64_t filled = fill(filler);
  printf("# diskfull: peer%d at height %llu; filler took %llu KB, %llu bytes left on its tmpfs\n",
         VICTIM, (unsigned long long)h0, (unsigned long long)(filled >> 10),
         (unsigned long long)free_bytes(g_mnt));
  assert_true(filled > 0);
  /* The others go on; the victim stops with an error. */
  uint64_t t0 = pn_now_ms(), t_err = 0;
  bool exited = false, unhealthy = false;
  int ws = 0, health = 0;
  uint64_t others = 0, stuck = 0;
  while (pn_now_ms() - t0 < 90000) {
    if (!exited && waitpid(g_net->ppid[VICTIM], &ws, WNOHANG) == g_net->ppid[VICTIM]) {
      exited = true;
      g_net->ppid[VICTIM] = 0;
    }
    if (!exited) {
      health = http_status(g_net->opsport[VICTIM], "/healthz");
      if (health == 503) unhealthy = true;
      stuck = fx_peer_height(g_net, VICTIM);
    }
    if (t_err == 0 && pn_log_count(g_net, VICTIM, "ERROR") > errs0) t_err = pn_now_ms();
    others = fx_peer_height(g_net, 2);
    /* Done when the error is logged and the victim either exited or is
     * unhealthy while the others moved 5 blocks past it. */
    if (t_err && (exited || (unhealthy && others >= stuck + 5))) break;
    pn_sleep_ms(200);
  }
  char logp[400];
  snprintf(logp, sizeof(logp), "%s/peer%d.log", g_net->dir, VICTIM);
  printf("# diskfull: after %llu ms: error logged %s, %s; others at %llu\n",
         (unsigned long long)(pn_now_ms() - t0), t_err ? "yes" : "no",
         exited ? "the peer exited" : unhealthy ? "the peer is up, /healthz 503" : "no reaction",
         (unsigned long long)others);
  {
    char *cmd = fl_sprintf("grep -m3 ERROR '%s' | sed 's/^/#   /' | cut -c1-200", logp);
    int rc = system(cmd);
    (void)rc;
    fl_free(cmd);
  }
  assert_true(t_err != 0);
  if (exited) {
    if (WIFSIGNALED(ws))
      fail_msg("peer%d died of signal %d when its disk filled (a crash)", VICTIM, WTERMSIG(ws));
    printf("# diskfull: peer exit status %d\n", WEXITSTATUS(ws));
    assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 2);
    assert_true(pn_log_count(g_net, VICTIM, "stopping") > 0);
  } else {
    assert_true(unhealthy);
    assert_int_equal(http_status(g_net->opsport[VICTIM], "/healthz"), 503);
  }
  /* Space returns. */
  assert_int_equal(unlink(filler), 0);
  uint64_t t_back = pn_now_ms();
  if (exited) {
    assert_int_equal(pn_start_peer(g_net, VICTIM), FL_OK);
    assert_int_equal(pn_wait_peer(g_net, VICTIM, 30000), FL_OK);
  }
  uint64_t target = fx_peer_height(g_net, 2);
  assert_int_equal(pn_wait_height(g_net, VICTIM, target, 60000), FL_OK);
  uint64_t t_caught = pn_now_ms() - t_back;
  int hz = http_status(g_net->opsport[VICTIM], "/healthz");
  printf("# diskfull: space back: peer%d %s and reached height %llu in %llu ms; /healthz %d\n",
         VICTIM, exited ? "restarted" : "resumed by itself", (unsigned long long)target,
         (unsigned long long)t_caught, hz);
  assert_int_equal(hz, 200);
  fx_load_pause(g_load);
  uint64_t h = fx_settle(g_net, 0xF, 60000);
  assert_true(h > 0);
  assert_int_equal(fx_check_agree(g_net, 0xF, 0xF, h), FL_OK);
  size_t n = 0;
  assert_int_equal(fx_same_state(g_net, VICTIM, 2, &n), FL_OK);
  uint32_t valid = 0, failed = 0;
  fx_load_stop(g_load, &valid, &failed);
  g_load = NULL;
  printf("# diskfull: no corruption: 4 peers agree on %llu blocks, state %zu bytes; load %u "
         "VALID, %u failed\n",
         (unsigned long long)h, n, valid, failed);
  assert_true(valid > 0);
}

static int setup(void **state) {
  (void)state;
  pn_opts_t o = {.log = "info"};
  if (pn_net_new(&o, envs("FL_PEER_BIN_DIR"), envs("FL_KVSTORE_SO"), envs("FL_COUNTER_SO"),
                 &g_net) != FL_OK)
    return -1;
  snprintf(g_mnt, sizeof(g_mnt), "%s/pdata%d", g_net->dir, VICTIM);
  mkdir(g_mnt, 0700);
  char opt[64];
  snprintf(opt, sizeof(opt), "size=%dm,mode=0700", TMPFS_MB);
  if (mount("tmpfs", g_mnt, "tmpfs", 0, opt) != 0) {
    fprintf(stderr, "diskfull: mount tmpfs on %s: %s\n", g_mnt, strerror(errno));
    goto fail;
  }
  g_mounted = true;
  if (pn_start_all(g_net) != FL_OK || pn_smoke(g_net, 30000) != FL_OK) goto fail;
  g_load = fx_load_start(g_net, "full", 20, 10);
  if (g_load == NULL) goto fail;
  /* Some blocks on the victim's tmpfs before it fills. */
  if (pn_wait_height(g_net, VICTIM, fx_peer_height(g_net, 0) + 3, 30000) != FL_OK) goto fail;
  return 0;
fail:
  fx_load_stop(g_load, NULL, NULL);
  g_load = NULL;
  if (g_net) pn_signal_peer(g_net, VICTIM, SIGKILL);
  if (g_mounted) umount2(g_mnt, MNT_DETACH);
  g_mounted = false;
  pn_net_free(g_net);
  g_net = NULL;
  return -1;
}

static int teardown(void **state) {
  (void)state;
  fx_load_stop(g_load, NULL, NULL);
  g_load = NULL;
  if (g_net && g_net->ppid[VICTIM] > 0) pn_signal_peer(g_net, VICTIM, SIGKILL);
  if (g_mounted) umount2(g_mnt, MNT_DETACH);
  g_mounted = false;
  pn_net_free(g_net);
  g_net = NULL;
  return 0;
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  /* A private mount namespace, before any thread exists: the tmpfs is
   * ours alone and cannot outlive this process and its children. */
  if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
    printf("# diskfull: SKIPPED: no private mount namespace (%s): needs root / CAP_SYS_ADMIN\n",
           strerror(errno));
    return 77;
  }
  {
    char probe[] = "/tmp/fl-fx-probe-XXXXXX";
    if (mkdtemp(probe) == NULL) return 77;
    int ok = mount("tmpfs", probe, "tmpfs", 0, "size=1m");
    int err = errno;
    if (ok == 0) umount2(probe, MNT_DETACH);
    rmdir(probe);
    if (ok != 0) {
      printf("# diskfull: SKIPPED: cannot mount a tmpfs (%s)\n", strerror(err));
      return 77;
    }
  }
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_disk_full_then_space_returns)};
  return cmocka_run_group_tests(tests, setup, teardown);
}
