"""Small socket programs for test_directions.sh, where no packaged tool fits.

  sip-uas PORT LOG              answer every SIP request with 200 OK; log one
                                line per datagram: "len=N from=ADDR first=LINE"
  sip-publish HOST PORT SIZE    send one RFC 6035 PUBLISH of exactly SIZE bytes,
                                exit 0 once its 200 OK arrives (3 s)
  udp-echo PORT LOG             log each datagram ("len=N from=ADDR") and send it
                                back from PORT; log "sent N" or "send-error E"
  udp-ask HOST PORT SECONDS     send one datagram, exit 0 if an answer comes in time
  connect HOST PORT SECONDS     one TCP connect; exit 0 if it completes in time
"""
import socket
import sys
import time


def bind_udp(port):
    # Dual stack: one socket serves the IPv4 and the IPv6 address.
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", port))
    return s


def log_line(path, text):
    with open(path, "a") as f:
        f.write(text + "\n")


def sip_uas(port, log):
    s = bind_udp(int(port))
    while True:
        data, peer = s.recvfrom(65535)
        head, _, _ = data.partition(b"\r\n\r\n")
        lines = head.decode("utf-8", "replace").split("\r\n")
        log_line(log, "len=%d from=%s first=%s" % (len(data), peer[0], lines[0]))
        copied = [l for l in lines[1:] if l.split(":")[0].lower() in
                  ("via", "from", "to", "call-id", "cseq")]
        reply = "\r\n".join(["SIP/2.0 200 OK"] + copied + ["Content-Length: 0", "", ""])
        s.sendto(reply.encode(), peer)


def sip_publish(host, port, size):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.connect((host, int(port)))
    local = s.getsockname()
    target = "[%s]" % host if ":" in host else host
    me = "[%s]" % local[0] if ":" in local[0] else local[0]
    call_id = "e2e-%d@%s" % (time.time_ns(), local[0])
    branch = "z9hG4bK-e2e%d" % time.time_ns()
    # An RFC 6035 VQSessionReport, padded to SIZE below.
    report = ("VQSessionReport: CallTerm\r\n"
              "CallID: %s\r\n"
              "LocalID: <sip:phone@%s>\r\n"
              "RemoteID: <sip:sem@%s>\r\n" % (call_id, me, target))
    def message(body):
        headers = ["PUBLISH sip:sem@%s SIP/2.0" % target,
                   "Via: SIP/2.0/UDP %s:%d;branch=%s" % (me, local[1], branch),
                   "Max-Forwards: 70",
                   "From: <sip:phone@%s>;tag=e2e" % me,
                   "To: <sip:sem@%s>" % target,
                   "Call-ID: %s" % call_id,
                   "CSeq: 1 PUBLISH",
                   "Event: vq-rtcpxr",
                   "Content-Type: application/vq-rtcpxr",
                   "Content-Length: %d" % len(body)]
        return ("\r\n".join(headers) + "\r\n\r\n" + body).encode()
    # One padding line, sized so the whole datagram is exactly SIZE bytes.
    def with_pad(k):
        return message(report + "X-E2E-Pad: " + "m" * k + "\r\n")
    k = max(0, int(size) - len(with_pad(0)))
    while k > 0 and len(with_pad(k)) > int(size):
        k -= 1
    msg = with_pad(k)
    if len(msg) != int(size):
        sys.exit("could not build a %s-byte PUBLISH (got %d)" % (size, len(msg)))
    s.send(msg)
    s.settimeout(3)
    try:
        reply = s.recv(65535)
    except socket.timeout:
        sys.exit("no answer to the %d-byte PUBLISH" % len(msg))
    first = reply.split(b"\r\n", 1)[0].decode("utf-8", "replace")
    print("sent %d bytes, answer: %s" % (len(msg), first))
    sys.exit(0 if first.startswith("SIP/2.0 200") else 1)


def udp_echo(port, log):
    s = bind_udp(int(port))
    while True:
        data, peer = s.recvfrom(65535)
        log_line(log, "len=%d from=%s" % (len(data), peer[0]))
        try:
            log_line(log, "sent %d" % s.sendto(data, peer))
        except OSError as e:
            log_line(log, "send-error %s" % e)


def udp_ask(host, port, seconds):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.connect((host, int(port)))
    s.send(b"xdpguard-e2e probe")
    s.settimeout(float(seconds))
    try:
        print("answer: %r" % s.recv(65535))
    except (socket.timeout, ConnectionRefusedError) as e:
        sys.exit("no answer from %s:%s: %s" % (host, port, e))


def connect(host, port, seconds):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(float(seconds))
    try:
        s.connect((host, int(port)))
    except OSError as e:
        sys.exit("connect %s:%s: %s" % (host, port, e))
    print("connected %s:%s" % (host, port))


if __name__ == "__main__":
    commands = {"sip-uas": sip_uas, "sip-publish": sip_publish,
                "udp-echo": udp_echo, "udp-ask": udp_ask, "connect": connect}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    commands[sys.argv[1]](*sys.argv[2:])
