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

int csystem_enable_receive_ttl(int fd, int family) {
    int one = 1;
    if (family == AF_INET6) return setsockopt(fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, &one, sizeof(one));
    return setsockopt(fd, IPPROTO_IP, IP_RECVTTL, &one, sizeof(one));
}

ssize_t csystem_recv_datagram(int fd, void *buf, size_t len, struct sockaddr_storage *from, int *ttl) {
    struct iovec iov = { .iov_base = buf, .iov_len = len };
    union { char buf[CMSG_SPACE(sizeof(int)) * 2]; struct cmsghdr align; } control;
    struct msghdr msg;
    memset(&msg, 0, sizeof(msg));
    memset(from, 0, sizeof(*from));
    msg.msg_name = from;
    msg.msg_namelen = sizeof(*from);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof(control.buf);
    *ttl = -1;
    ssize_t n = recvmsg(fd, &msg, 0);
    if (n < 0) return n;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
        if ((c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TTL) ||
            (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_HOPLIMIT)) {
            int value;
            memcpy(&value, CMSG_DATA(c), sizeof(value));
            *ttl = value;
        }
    }
    return n;
}
