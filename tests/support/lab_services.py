# Services for version-scan tests, dual stack, in a lab namespace: an SSH banner (22), a small
# HTTP server (80, 8080), TLS (443, with a self-signed certificate made at start), and a DNS
# server (53, UDP and TCP) that refuses every query. Each answers like its service so that
# nmap -sV and ordinary clients behave as they would against a real one. Runs for argv[1] s.
import os, socket, ssl, subprocess, sys, tempfile, threading, time

def serve(port, handler, wrap=None):
    s = socket.create_server(('::', port), family=socket.AF_INET6, dualstack_ipv6=True)
    while True:
        c, _ = s.accept()
        threading.Thread(target=handler, args=(c, wrap), daemon=True).start()

def http(c, wrap):
    try:
        c.settimeout(10)
        if wrap:
            c = wrap.wrap_socket(c, server_side=True)
        if c.recv(4096):
            body = b"<html>lab</html>\n"
            c.sendall(b"HTTP/1.0 200 OK\r\nServer: lab/1.0\r\nContent-Type: text/html\r\n"
                      b"Content-Length: %d\r\n\r\n" % len(body) + body)
    except Exception:
        pass
    c.close()

def ssh(c, wrap):
    try:
        c.settimeout(10)
        c.sendall(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n")
        c.recv(4096)
    except Exception:
        pass
    c.close()

def refused(query):
    if len(query) < 12:
        return None
    # The query back, as a response (QR) with RCODE 5 (refused).
    return query[:2] + bytes([query[2] | 0x80, (query[3] & 0xf0) | 5]) + query[4:]

def dns_tcp(c, wrap):
    try:
        c.settimeout(10)
        data = c.recv(4096)
        answer = refused(data[2:])
        if answer:
            c.sendall(len(answer).to_bytes(2, 'big') + answer)
    except Exception:
        pass
    c.close()

def dns_udp():
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(('::', 53))
    while True:
        data, peer = s.recvfrom(4096)
        answer = refused(data)
        if answer:
            s.sendto(answer, peer)

d = tempfile.mkdtemp()
key, cert = os.path.join(d, 'key.pem'), os.path.join(d, 'cert.pem')
subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key,
                '-out', cert, '-days', '1', '-subj', '/CN=lab'], check=True, capture_output=True)
tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
tls.load_cert_chain(cert, key)
for port, handler, wrap in [(22, ssh, None), (80, http, None), (8080, http, None),
                            (443, http, tls), (53, dns_tcp, None)]:
    threading.Thread(target=serve, args=(port, handler, wrap), daemon=True).start()
threading.Thread(target=dns_udp, daemon=True).start()
time.sleep(float(sys.argv[1]) if len(sys.argv) > 1 else 60)
