/* SPDX-License-Identifier: Apache-2.0
 *
 * fxproxy.c: the fault proxy (fxproxy.h). One thread runs a poll(2) loop
 * over the listening sockets, a wake-up pipe and both sockets of every
 * proxied connection. accept4 and pipe2 need _GNU_SOURCE.
 */
#define _GNU_SOURCE
#include "tests/faults/fxproxy.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/base/alloc.h"

#define FX_QMAX (1u << 20) /* bytes queued per direction before reading stops */
#define FX_CHUNK 65536

typedef struct fx_chunk_s {
  struct fx_chunk_s *next;
  uint64_t due_ms;
  size_t len, off;
  uint8_t data[];
} fx_chunk_t;

typedef struct fx_queue_s {
  fx_chunk_t *head, *tail;
  size_t bytes;
} fx_queue_t;

typedef struct fx_conn_s {
  struct fx_conn_s *next;
  int fd[2];        /* 0: the accepted client side, 1: the upstream side */
  int src, dst;     /* link (src, dst) */
  bool connecting;  /* upstream connect in progress */
  bool dead;
  fx_queue_t q[2];  /* q[d]: read from fd[d], to be written to fd[1 - d] */
  int pidx[2];      /* poll slots of fd[0], fd[1] (-1: not polled) */
} fx_conn_t;

typedef struct fx_link_s {
  fx_mode_t mode;
  uint32_t delay_ms;
} fx_link_t;

struct fx_proxy_s {
  int n;
  int lfd[FX_MAXN];
  uint16_t port[FX_MAXN], up[FX_MAXN];
  int wake[2];
  pthread_t th;
  pthread_mutex_t mu;
  bool stop;                               /* under mu */
  pid_t pid[FX_MAXN];                      /* under mu */
  fx_link_t link[FX_MAXN + 1][FX_MAXN + 1]; /* under mu */
  fx_stats_t st;                           /* under mu */
  fx_conn_t *conns;                        /* proxy thread only */
};

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void poke(fx_proxy_t *px) {
  char c = 1;
  ssize_t w = write(px->wake[1], &c, 1);
  (void)w; /* a full pipe already wakes the loop */
}

/* ------------------------------------------------------ who connected */

/* The inode of the loopback socket whose local port is lport and whose
 * remote port is rport (0 when not found). */
static unsigned long sock_inode(uint16_t lport, uint16_t rport) {
  FILE *f = fopen("/proc/net/tcp", "r");
  if (f == NULL) return 0;
  char line[512];
  unsigned long found = 0;
  if (fgets(line, sizeof(line), f) == NULL) { /* header */
    fclose(f);
    return 0;
  }
  while (fgets(line, sizeof(line), f)) {
    unsigned la, lp, ra, rp, state;
    unsigned long inode;
    if (sscanf(line, " %*d: %x:%x %x:%x %x %*x:%*x %*x:%*x %*x %*d %*d %lu", &la, &lp, &ra, &rp,
               &state, &inode) != 6)
      continue;
    if (lp == lport && rp == rport && inode != 0) {
      found = inode;
      break;
    }
  }
  fclose(f);
  return found;
}

static bool pid_has_socket(pid_t pid, unsigned long inode) {
  char dir[64], want[64], path[320], got[64];
  snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
  snprintf(want, sizeof(want), "socket:[%lu]", inode);
  DIR *d = opendir(dir);
  if (d == NULL) return false;
  bool yes = false;
  struct dirent *e;
  while (!yes && (e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
    ssize_t k = readlink(path, got, sizeof(got) - 1);
    if (k <= 0) continue;
    got[k] = '\0';
    yes = strcmp(got, want) == 0;
  }
  closedir(d);
  return yes;
}

static int identify(fx_proxy_t *px, uint16_t peer_port, uint16_t listen_port) {
  pid_t pids[FX_MAXN];
  pthread_mutex_lock(&px->mu);
  memcpy(pids, px->pid, sizeof(pids));
  pthread_mutex_unlock(&px->mu);
  unsigned long inode = sock_inode(peer_port, listen_port);
  if (inode == 0) return FX_CLIENTS;
  for (int i = 0; i < px->n; i++)
    if (pids[i] > 0 && pid_has_socket(pids[i], inode)) return i;
  return FX_CLIENTS;
}

/* ------------------------------------------------------------- queues */

static void q_clear(fx_queue_t *q) {
  while (q->head) {
    fx_chunk_t *c = q->head;
    q->head = c->next;
    fl_free(c);
  }
  q->tail = NULL;
  q->bytes = 0;
}

static void conn_free(fx_conn_t *c) {
  for (int d = 0; d < 2; d++) {
    if (c->fd[d] >= 0) close(c->fd[d]);
    q_clear(&c->q[d]);
  }
  fl_free(c);
}

/* Reads what fd[d] has into q[d], due after delay. False on EOF/error. */
static bool pump_in(fx_proxy_t *px, fx_conn_t *c, int d, uint32_t delay) {
  fx_chunk_t *ch = fl_malloc(sizeof(*ch) + FX_CHUNK);
  ssize_t k = read(c->fd[d], ch->data, FX_CHUNK);
  if (k <= 0) {
    fl_free(ch);
    return k < 0 && (errno == EAGAIN || errno == EINTR);
  }
  ch->next = NULL;
  ch->len = (size_t)k;
  ch->off = 0;
  ch->due_ms = now_ms() + delay;
  if (c->q[d].tail) c->q[d].tail->next = ch;
  else c->q[d].head = ch;
  c->q[d].tail = ch;
  c->q[d].bytes += (size_t)k;
  pthread_mutex_lock(&px->mu);
  px->st.bytes += (uint64_t)k;
  pthread_mutex_unlock(&px->mu);
  return true;
}

/* Writes the due chunks of q[d] to fd[1 - d]. False on error. */
static bool pump_out(fx_conn_t *c, int d, uint64_t now) {
  fx_queue_t *q = &c->q[d];
  while (q->head && q->head->due_ms <= now) {
    fx_chunk_t *h = q->head;
    ssize_t k = write(c->fd[1 - d], h->data + h->off, h->len - h->off);
    if (k < 0) return errno == EAGAIN || errno == EINTR;
    h->off += (size_t)k;
    q->bytes -= (size_t)k;
    if (h->off < h->len) return true;
    q->head = h->next;
    if (q->head == NULL) q->tail = NULL;
    fl_free(h);
  }
  return true;
}

static void on_accept(fx_proxy_t *px, int j) {
  for (;;) {
    struct sockaddr_in a;
    socklen_t al = sizeof(a);
    int fd = accept4(px->lfd[j], (struct sockaddr *)&a, &al, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    int src = identify(px, ntohs(a.sin_port), px->port[j]);
    pthread_mutex_lock(&px->mu);
    fx_mode_t mode = px->link[src][j].mode;
    if (src == FX_CLIENTS) px->st.conns_client++;
    else px->st.conns_node++;
    if (mode == FX_RESET) px->st.resets++;
    pthread_mutex_unlock(&px->mu);
    if (mode == FX_RESET) {
      struct linger lg = {1, 0}; /* close with RST */
      setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
      close(fd);
      continue;
    }
    int u = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (u < 0) {
      close(fd);
      continue;
    }
    struct sockaddr_in ua = {.sin_family = AF_INET, .sin_port = htons(px->up[j]),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int r = connect(u, (struct sockaddr *)&ua, sizeof(ua));
    if (r < 0 && errno != EINPROGRESS) {
      close(fd);
      close(u);
      continue;
    }
    fx_conn_t *c = fl_calloc(1, sizeof(*c));
    c->fd[0] = fd;
    c->fd[1] = u;
    c->src = src;
    c->dst = j;
    c->connecting = r < 0;
    c->next = px->conns;
    px->conns = c;
  }
}

static void *run(void *arg) {
  fx_proxy_t *px = arg;
  struct pollfd *pfd = NULL;
  size_t cap = 0;
  for (;;) {
    fx_link_t link[FX_MAXN + 1][FX_MAXN + 1];
    pthread_mutex_lock(&px->mu);
    bool stop = px->stop;
    memcpy(link, px->link, sizeof(link));
    pthread_mutex_unlock(&px->mu);
    if (stop) break;
    /* Drop dead and reset connections. */
    uint64_t resets = 0;
    for (fx_conn_t **pp = &px->conns; *pp;) {
      fx_conn_t *c = *pp;
      bool reset = link[c->src][c->dst].mode == FX_RESET;
      if (c->dead || reset) {
        if (reset && !c->dead) {
          resets++;
          struct linger lg = {1, 0};
          setsockopt(c->fd[0], SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
          setsockopt(c->fd[1], SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        }
        *pp = c->next;
        conn_free(c);
      } else {
        pp = &c->next;
      }
    }
    if (resets) {
      pthread_mutex_lock(&px->mu);
      px->st.resets += resets;
      pthread_mutex_unlock(&px->mu);
    }
    size_t need = 1 + (size_t)px->n;
    for (fx_conn_t *c = px->conns; c; c = c->next) need += 2;
    if (need > cap) {
      cap = need * 2;
      pfd = fl_realloc(pfd, cap * sizeof(*pfd));
    }
    size_t np = 0;
    pfd[np++] = (struct pollfd){.fd = px->wake[0], .events = POLLIN};
    for (int j = 0; j < px->n; j++) pfd[np++] = (struct pollfd){.fd = px->lfd[j], .events = POLLIN};
    uint64_t now = now_ms();
    int timeout = 200;
    for (fx_conn_t *c = px->conns; c; c = c->next) {
      const fx_link_t *l = &link[c->src][c->dst];
      short ev[2] = {0, 0};
      if (c->connecting) {
        ev[1] |= POLLOUT;
      } else if (l->mode == FX_PASS) {
        for (int d = 0; d < 2; d++) {
          if (c->q[d].bytes < FX_QMAX) ev[d] |= POLLIN;
          fx_chunk_t *h = c->q[d].head;
          if (h == NULL) continue;
          if (h->due_ms <= now) {
            ev[1 - d] |= POLLOUT;
          } else {
            uint64_t w = h->due_ms - now;
            if (w < (uint64_t)timeout) timeout = (int)w;
          }
        }
      }
      for (int d = 0; d < 2; d++) {
        c->pidx[d] = -1;
        if (ev[d] == 0) continue;
        c->pidx[d] = (int)np;
        pfd[np++] = (struct pollfd){.fd = c->fd[d], .events = ev[d]};
      }
    }
    int r = poll(pfd, np, timeout);
    if (r < 0 && errno != EINTR) break;
    if (r > 0 && (pfd[0].revents & POLLIN)) {
      char b[64];
      while (read(px->wake[0], b, sizeof(b)) > 0) {
      }
    }
    for (int j = 0; j < px->n; j++)
      if (r > 0 && (pfd[1 + j].revents & POLLIN)) on_accept(px, j);
    now = now_ms();
    for (fx_conn_t *c = px->conns; c; c = c->next) {
      if (c->dead) continue;
      const fx_link_t *l = &link[c->src][c->dst];
      if (c->connecting) {
        if (c->pidx[1] >= 0 && pfd[c->pidx[1]].revents) {
          int err = 0;
          socklen_t el = sizeof(err);
          getsockopt(c->fd[1], SOL_SOCKET, SO_ERROR, &err, &el);
          if (err != 0) c->dead = true;
          else c->connecting = false;
        }
        continue;
      }
      for (int d = 0; d < 2 && !c->dead; d++) {
        int pi = c->pidx[d];
        if (pi < 0) continue;
        short re = pfd[pi].revents;
        if ((re & POLLIN) && !pump_in(px, c, d, l->delay_ms)) c->dead = true;
        else if (re & (POLLERR | POLLNVAL)) c->dead = true;
        else if ((re & POLLHUP) && !(re & POLLIN)) c->dead = true;
      }
      for (int d = 0; d < 2 && !c->dead; d++) {
        int pi = c->pidx[1 - d];
        if (pi >= 0 && (pfd[pi].revents & POLLOUT) && !pump_out(c, d, now)) c->dead = true;
      }
    }
  }
  fl_free(pfd);
  while (px->conns) {
    fx_conn_t *c = px->conns;
    px->conns = c->next;
    conn_free(c);
  }
  return NULL;
}

fl_status_t fx_proxy_start(int n, const uint16_t *up_ports, fx_proxy_t **out) {
  *out = NULL;
  if (n <= 0 || n > FX_MAXN) return FL_EINVAL;
  fx_proxy_t *px = fl_calloc(1, sizeof(*px));
  px->n = n;
  px->wake[0] = px->wake[1] = -1;
  for (int j = 0; j < FX_MAXN; j++) px->lfd[j] = -1;
  pthread_mutex_init(&px->mu, NULL);
  if (pipe2(px->wake, O_NONBLOCK | O_CLOEXEC) != 0) goto fail;
  for (int j = 0; j < n; j++) {
    px->up[j] = up_ports[j];
    int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s < 0) goto fail;
    px->lfd[j] = s;
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    if (bind(s, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(s, 128) != 0 ||
        getsockname(s, (struct sockaddr *)&a, &al) != 0)
      goto fail;
    px->port[j] = ntohs(a.sin_port);
  }
  if (pthread_create(&px->th, NULL, run, px) != 0) goto fail;
  *out = px;
  return FL_OK;
fail:
  perror("fxproxy: start");
  for (int j = 0; j < FX_MAXN; j++)
    if (px->lfd[j] >= 0) close(px->lfd[j]);
  for (int k = 0; k < 2; k++)
    if (px->wake[k] >= 0) close(px->wake[k]);
  pthread_mutex_destroy(&px->mu);
  fl_free(px);
  return FL_EIO;
}

uint16_t fx_proxy_port(const fx_proxy_t *px, int j) { return px->port[j]; }

void fx_proxy_set_pid(fx_proxy_t *px, int i, pid_t pid) {
  pthread_mutex_lock(&px->mu);
  px->pid[i] = pid;
  pthread_mutex_unlock(&px->mu);
}

void fx_proxy_set_link(fx_proxy_t *px, int a, int b, fx_mode_t mode, uint32_t delay_ms) {
  pthread_mutex_lock(&px->mu);
  px->link[a][b] = (fx_link_t){mode, delay_ms};
  px->link[b][a] = (fx_link_t){mode, delay_ms};
  pthread_mutex_unlock(&px->mu);
  poke(px);
}

void fx_proxy_heal(fx_proxy_t *px) {
  pthread_mutex_lock(&px->mu);
  memset(px->link, 0, sizeof(px->link));
  pthread_mutex_unlock(&px->mu);
  poke(px);
}

void fx_proxy_stats(fx_proxy_t *px, fx_stats_t *out) {
  pthread_mutex_lock(&px->mu);
  *out = px->st;
  pthread_mutex_unlock(&px->mu);
}

void fx_proxy_stop(fx_proxy_t *px) {
  if (px == NULL) return;
  pthread_mutex_lock(&px->mu);
  px->stop = true;
  pthread_mutex_unlock(&px->mu);
  poke(px);
  pthread_join(px->th, NULL);
  for (int j = 0; j < px->n; j++) close(px->lfd[j]);
  close(px->wake[0]);
  close(px->wake[1]);
  pthread_mutex_destroy(&px->mu);
  fl_free(px);
}
