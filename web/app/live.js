// A small graphql-transport-ws client (the protocol the gateway speaks at /graphql/ws):
// connection_init with the bearer token, subscribe/next/error/complete, ping/pong, and
// reconnection with backoff that re-subscribes everything. `onReconnect` lets views refetch
// what they may have missed while the socket was down.

const PROTOCOL = 'graphql-transport-ws';

export class LiveClient {
  /**
   * @param {() => string|null} getToken the bearer token to send in connection_init
   * @param {{onState?: (state: string) => void, onReconnect?: () => void,
   *          onForbidden?: (token: string|null) => void}} hooks: `onForbidden` gets the token
   *          the server refused
   */
  constructor(getToken, hooks = {}) {
    this.getToken = getToken;
    this.hooks = hooks;
    this.subscriptions = new Map();
    this.nextId = 1;
    this.socket = null;
    this.acked = false;
    this.closed = true;
    this.attempt = 0;
    this.everConnected = false;
  }

  /** Opens the socket (again); subscriptions made before are sent once it is acknowledged. */
  start() {
    this.closed = false;
    this.connect();
  }

  /** Closes the socket for good (sign-out). */
  stop() {
    this.closed = true;
    clearTimeout(this.retryTimer);
    if (this.socket) this.socket.close(1000, 'Normal Closure');
    this.socket = null;
    this.subscriptions.clear();
  }

  /**
   * Subscribes; `onNext(data)` gets each result's data, `onError(errors)` the errors of a
   * refused subscription. Returns a function that unsubscribes.
   */
  subscribe(query, variables, onNext, onError = () => {}) {
    const id = String(this.nextId++);
    this.subscriptions.set(id, { query, variables, onNext, onError });
    if (this.acked) this.sendSubscribe(id);
    return () => {
      if (!this.subscriptions.delete(id)) return;
      if (this.acked) this.send({ id, type: 'complete' });
    };
  }

  connect() {
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/graphql/ws`;
    const socket = new WebSocket(url, PROTOCOL);
    this.socket = socket;
    this.acked = false;
    this.setState('connecting');
    let token = null;
    socket.addEventListener('open', () => {
      token = this.getToken();
      this.send({ type: 'connection_init', payload: token ? { Authorization: `Bearer ${token}` } : {} });
    });
    socket.addEventListener('message', (event) => this.receive(event.data));
    socket.addEventListener('close', (event) => {
      if (this.socket !== socket) return;
      this.acked = false;
      this.socket = null;
      if (this.closed) return;
      if (event.code === 4403) {
        this.setState('forbidden');
        this.hooks.onForbidden?.(token);
        return;
      }
      this.setState('offline');
      // Exponential backoff, capped at 15 s, with jitter so many tabs do not reconnect at once.
      const delay = Math.min(15000, 500 * 2 ** this.attempt) * (0.75 + Math.random() / 2);
      this.attempt += 1;
      this.retryTimer = setTimeout(() => this.connect(), delay);
    });
  }

  receive(raw) {
    let message;
    try {
      message = JSON.parse(raw);
    } catch {
      return;
    }
    switch (message.type) {
      case 'connection_ack': {
        this.acked = true;
        this.attempt = 0;
        this.setState('live');
        for (const id of this.subscriptions.keys()) this.sendSubscribe(id);
        if (this.everConnected) this.hooks.onReconnect?.();
        this.everConnected = true;
        break;
      }
      case 'ping':
        this.send({ type: 'pong' });
        break;
      case 'next': {
        const sub = this.subscriptions.get(message.id);
        if (!sub) break;
        if (message.payload?.errors?.length) sub.onError(message.payload.errors);
        if (message.payload?.data) sub.onNext(message.payload.data);
        break;
      }
      case 'error': {
        const sub = this.subscriptions.get(message.id);
        this.subscriptions.delete(message.id);
        sub?.onError(message.payload || []);
        break;
      }
      case 'complete': {
        // The server ended the stream (for instance a subscriber that fell behind): subscribe
        // again and let the view refetch.
        const sub = this.subscriptions.get(message.id);
        if (sub && this.acked) {
          this.sendSubscribe(message.id);
          this.hooks.onReconnect?.();
        }
        break;
      }
      default:
        break;
    }
  }

  sendSubscribe(id) {
    const sub = this.subscriptions.get(id);
    if (!sub) return;
    this.send({ id, type: 'subscribe', payload: { query: sub.query, variables: sub.variables || {} } });
  }

  send(message) {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  setState(state) {
    this.state = state;
    this.hooks.onState?.(state);
  }
}
