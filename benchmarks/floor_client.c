/* The least a released client can do: read stdin to EOF (as spamc does, so it is released
 * the same way), then connect() and wait. benchmarks/launch_skew.py --floor runs 3,000 of
 * these where it runs spamc: their skew is what the machine allows any one-process-per-
 * message load, whatever the client. Usage: floor_client PORT */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
    char buf[65536];
    struct sockaddr_in a = {0};
    int s;
    if (argc < 2) return 64;
    while (read(0, buf, sizeof buf) > 0) {}
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)atoi(argv[1]));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) != 0) return 69;
    while (read(s, buf, sizeof buf) > 0) {}  /* until the listener lets go */
    return 0;
}
