// A raw-socket upstream for responses that Node's HTTP server cannot send: a status code below
// 100, a response written before the request body was read, or malformed framing.

import net from 'node:net';
import tls from 'node:tls';

// Starts a loopback server that reads each connection's request head (up to the blank line),
// records it in `heads`, and calls `onHead(head, socket)`, which writes the response and ends
// or destroys the socket. With `secure` ({key, cert} in PEM), the server speaks TLS. Resolves
// {url, heads, close()}.
export async function startHeadResponder(onHead, { secure } = {}) {
  const heads = [];
  const onConnection = (socket) => {
    let received = '';
    const onData = (chunk) => {
      received += chunk.toString('latin1');
      const end = received.indexOf('\r\n\r\n');
      if (end < 0) {
        return;
      }
      socket.off('data', onData);
      const head = received.slice(0, end);
      heads.push(head);
      onHead(head, socket);
    };
    socket.on('data', onData);
    socket.on('error', () => {});
  };
  const server = secure
    ? tls.createServer({ key: secure.key, cert: secure.cert }, onConnection)
    : net.createServer(onConnection);
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    url: secure ? `https://localhost:${port}` : `http://127.0.0.1:${port}`,
    heads,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}
