// CSystem: the Linux system interfaces Swift's Glibc module does not expose cleanly.
// Include <netinet/tcp.h>, never <linux/tcp.h>: the two define the same structs and clash.
#ifndef HERALD_CSYSTEM_H
#define HERALD_CSYSTEM_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <sys/eventfd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <unistd.h>
#include <signal.h>
#include <malloc.h>

// Socket option numbers as constants Swift can read (some are macros Swift cannot import).
static const int csystem_IP_TTL = IP_TTL;
static const int csystem_IP_MINTTL = IP_MINTTL;
static const int csystem_IPV6_UNICAST_HOPS = IPV6_UNICAST_HOPS;
static const int csystem_IPV6_MINHOPCOUNT = IPV6_MINHOPCOUNT;
static const int csystem_TCP_MD5SIG = TCP_MD5SIG;
static const int csystem_TCP_MD5SIG_MAXKEYLEN = TCP_MD5SIG_MAXKEYLEN;

static const uint32_t csystem_EPOLLIN = EPOLLIN;
static const uint32_t csystem_EPOLLOUT = EPOLLOUT;
static const uint32_t csystem_EPOLLERR = EPOLLERR;
static const uint32_t csystem_EPOLLHUP = EPOLLHUP;
static const uint32_t csystem_EPOLLRDHUP = EPOLLRDHUP;
static const uint32_t csystem_EPOLLET = EPOLLET;

/// Installs (key_len > 0) or removes (key_len == 0) the RFC 2385 TCP MD5 key for one peer address
/// on a socket. `peer` is a sockaddr_in or sockaddr_in6 of `peer_len` bytes.
/// Returns 0 or -1 with errno set, like setsockopt.
int csystem_set_tcp_md5(int fd, const struct sockaddr *peer, socklen_t peer_len,
                        const uint8_t *key, int key_len);

/// epoll_event is packed on x86_64; these accessors keep Swift away from its layout.
int csystem_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data);
uint32_t csystem_epoll_event_events(const struct epoll_event *event);
uint64_t csystem_epoll_event_data(const struct epoll_event *event);
size_t csystem_epoll_event_size(void);

/// accept4(2) with SOCK_NONBLOCK | SOCK_CLOEXEC (glibc declares accept4 only under _GNU_SOURCE).
int csystem_accept4(int fd, struct sockaddr *addr, socklen_t *len);

/// Asks the kernel to report each datagram's received IP TTL (IP_RECVTTL) or IPv6 hop limit
/// (IPV6_RECVHOPLIMIT) as a control message; `family` is AF_INET or AF_INET6.
int csystem_enable_receive_ttl(int fd, int family);

/// recvmsg(2) for one datagram: copies the source into `from`, the TTL / hop limit into `*ttl`
/// (-1 when the kernel gave none). Returns the byte count, or -1 with errno set.
ssize_t csystem_recv_datagram(int fd, void *buf, size_t len, struct sockaddr_storage *from, int *ttl);

// Hands free heap pages back to the kernel (glibc `malloc_trim(0)`; <malloc.h> is not in
// Swift's Glibc module). Returns 1 if memory was released.
static inline int csystem_release_free_heap(void) { return malloc_trim(0); }

#endif
