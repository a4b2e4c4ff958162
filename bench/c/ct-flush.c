// ct-flush: empties the connection tracking table of the network namespace it runs in (one
// ctnetlink IPCTNL_MSG_CT_DELETE without a tuple, as `conntrack -F` sends), so that every
// benchmark run starts from an empty table. Prints nothing; exit 0 once the kernel acknowledged.
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netlink.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(void) {
  int fd = socket(AF_NETLINK, SOCK_RAW, NETLINK_NETFILTER);
  if (fd < 0) {
    perror("ct-flush: socket");
    return 1;
  }
  struct {
    struct nlmsghdr nh;
    struct nfgenmsg nf;
  } req;
  memset(&req, 0, sizeof req);
  req.nh.nlmsg_len = sizeof req;
  req.nh.nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE;
  req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  req.nh.nlmsg_seq = 1;
  req.nf.nfgen_family = AF_UNSPEC; /* both families */
  req.nf.version = NFNETLINK_V0;
  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  if (sendto(fd, &req, sizeof req, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0) {
    perror("ct-flush: send");
    return 1;
  }
  char buf[4096];
  ssize_t n = recv(fd, buf, sizeof buf, 0);
  if (n < (ssize_t)sizeof(struct nlmsghdr)) {
    perror("ct-flush: recv");
    return 1;
  }
  struct nlmsghdr *h = (struct nlmsghdr *)buf;
  if (h->nlmsg_type == NLMSG_ERROR) {
    struct nlmsgerr *e = NLMSG_DATA(h);
    if (e->error != 0) {
      fprintf(stderr, "ct-flush: the kernel answered error %d\n", -e->error);
      return 1;
    }
  }
  return 0;
}
