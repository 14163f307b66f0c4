#define _GNU_SOURCE 1  // accept4
#include "CSystem.h"
#include <string.h>
#include <errno.h>

int csystem_set_tcp_md5(int fd, const struct sockaddr *peer, socklen_t peer_len,
                        const uint8_t *key, int key_len) {
    struct tcp_md5sig sig;
    memset(&sig, 0, sizeof(sig));
    if (peer_len > sizeof(sig.tcpm_addr) || key_len < 0 || key_len > TCP_MD5SIG_MAXKEYLEN) {
        errno = EINVAL;
        return -1;
    }
    memcpy(&sig.tcpm_addr, peer, peer_len);
    sig.tcpm_keylen = (uint16_t)key_len;
    if (key_len > 0) memcpy(sig.tcpm_key, key, (size_t)key_len);
    return setsockopt(fd, IPPROTO_TCP, TCP_MD5SIG, &sig, sizeof(sig));
}

int csystem_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data) {
    struct epoll_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.events = events;
    ev.data.u64 = data;
    return epoll_ctl(epfd, op, fd, &ev);
}

uint32_t csystem_epoll_event_events(const struct epoll_event *event) { return event->events; }
uint64_t csystem_epoll_event_data(const struct epoll_event *event) { return event->data.u64; }
size_t csystem_epoll_event_size(void) { return sizeof(struct epoll_event); }

int csystem_accept4(int fd, struct sockaddr *addr, socklen_t *len) {
    return accept4(fd, addr, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
}
