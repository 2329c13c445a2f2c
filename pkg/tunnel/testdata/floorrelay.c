/*
 * floorrelay: the tunnel's topology with nothing but the relaying, for
 * BenchmarkTunnel's "floor" line. Three of these, started ahead of use as
 * the tunnel's pool starts its processes, stand for the daemon (listen), the
 * qrexec client (pipe) and the handler (connect). Each is a single-threaded
 * poll(2) loop, as socat or qrexec's own C code: what one connection costs
 * the machine with this many hops, however well they are written.
 *
 *   floorrelay listen        fd 3 listening socket, fd 4 to next, fd 5 from next
 *   floorrelay pipe          stdin/stdout previous, fd 3 to next, fd 4 from next
 *   floorrelay connect PORT  stdin/stdout previous; connects to 127.0.0.1:PORT
 *                            once the first bytes arrive
 *
 * It ends when the far side's stream ends (exit-on-service-eof).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static char buf[65536];

static void write_all(int fd, const char *p, ssize_t n) {
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			exit(1);
		}
		p += w;
		n -= w;
	}
}

static void end_stream(int fd, int sock) {
	if (sock)
		shutdown(fd, SHUT_WR);
	else
		close(fd);
}

/* relay copies near_in to far_out and far_in to near_out until far_in ends. */
static void relay(int near_in, int near_out, int near_sock, int far_in, int far_out, int far_sock) {
	int near_open = 1;
	for (;;) {
		struct pollfd p[2] = {{far_in, POLLIN, 0}, {near_in, POLLIN, 0}};
		if (poll(p, near_open ? 2 : 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			exit(1);
		}
		if (near_open && p[1].revents) {
			ssize_t n = read(near_in, buf, sizeof buf);
			if (n <= 0) {
				near_open = 0;
				end_stream(far_out, far_sock);
			} else {
				write_all(far_out, buf, n);
			}
		}
		if (p[0].revents) {
			ssize_t n = read(far_in, buf, sizeof buf);
			if (n <= 0) {
				end_stream(near_out, near_sock);
				return;
			}
			write_all(near_out, buf, n);
		}
	}
}

int main(int argc, char **argv) {
	int one = 1;
	if (argc == 2 && !strcmp(argv[1], "listen")) {
		int c = accept(3, NULL, NULL);
		if (c < 0)
			return 1;
		setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		relay(c, c, 1, 5, 4, 0);
		return 0;
	}
	if (argc == 2 && !strcmp(argv[1], "pipe")) {
		relay(0, 1, 0, 4, 3, 0);
		return 0;
	}
	if (argc == 3 && !strcmp(argv[1], "connect")) {
		ssize_t n = read(0, buf, sizeof buf);
		if (n <= 0)
			return 0;
		int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2])),
					.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) < 0) {
			perror("connect");
			return 1;
		}
		setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		write_all(s, buf, n);
		relay(0, 1, 0, s, s, 1);
		return 0;
	}
	fprintf(stderr, "usage: floorrelay listen | pipe | connect PORT\n");
	return 2;
}
