/**
 * A stand-in for the Hugging Face hub on 127.0.0.1, answering as the hub does:
 *  - GET /api/models/OWNER/NAME/revision/REV?blobs=true: {id, sha, siblings: [{rfilename, size,
 *    blobId, lfs: {sha256, size, pointerSize}}]}; 401 + X-Error-Code: RepoNotFound without a token
 *    for an unknown or private repo, 404 with one;
 *  - GET/HEAD /OWNER/NAME/resolve/REV/FILE: small files served directly with ETag = git blob sha1;
 *    LFS files answered with a 302 to a second server (the "CDN", another origin) carrying
 *    X-Linked-Etag = sha256 and X-Linked-Size; both carry X-Repo-Commit;
 *  - the CDN serves blobs by sha256 with Range support.
 * Hashes are computed here with node:crypto from the bytes, independently of src/hub.
 * Faults to inject: stall after N bytes (then drop the connection: a cut), serve corrupted bytes.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RepoSpec {
  commit: string;
  files: Record<string, Uint8Array>;
  /** Files stored in LFS (default: *.safetensors, *.bin, *.gguf). */
  lfs?: (path: string) => boolean;
  /** Needs this token: for everything (private), or with `gated` only for the files. */
  token?: string;
  /** Gated: the model info is public, the files answer 401/403 with X-Error-Code: GatedRepo. */
  gated?: boolean;
  /** Other names of the commit (default: { main }). */
  refs?: string[];
}

export interface Fault {
  /** Send this many body bytes, then hold the connection open (until dropStalled() or the client gives up). */
  stallAfter?: number;
  /** Flip one byte in the middle of the body. */
  corrupt?: boolean;
  /** Applies to this many requests, then the fault is gone (default 1). */
  times?: number;
}

export interface LoggedRequest {
  server: 'hub' | 'cdn';
  method: string;
  path: string;
  range?: string;
  authorization?: string;
  /** Body bytes written (for GETs of files). */
  sent: number;
}

export function gitBlobSha1(data: Uint8Array): string {
  return createHash('sha1').update(`blob ${data.length}\0`).update(data).digest('hex');
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

function lfsPointer(data: Uint8Array): string {
  return `version https://git-lfs.github.com/spec/v1\noid sha256:${sha256(data)}\nsize ${data.length}\n`;
}

const defaultLfs = (p: string): boolean => /\.(safetensors|bin|gguf)$/.test(p);

export class FakeHub {
  readonly repos = new Map<string, RepoSpec>();
  readonly log: LoggedRequest[] = [];
  /** Faults by file path (applied on the server that sends the bytes). */
  readonly faults = new Map<string, Fault>();
  /** Resolves when a stalled response has sent its bytes. */
  stalled: Promise<void> = Promise.resolve();
  private stalledResolve: () => void = () => {};
  private hub = http.createServer((req, res) => this.handleHub(req, res));
  private cdn = http.createServer((req, res) => this.handleCdn(req, res));
  private open = new Set<import('node:net').Socket>();
  hubUrl = '';
  cdnUrl = '';

  /**
   * `cdnHost` names the CDN in redirects: another port of 127.0.0.1 by default; 'localhost' (still
   * 127.0.0.1) makes it another host name too, which huggingface_hub needs to treat it as a CDN.
   */
  constructor(private readonly cdnHost = '127.0.0.1') {}

  /** Answer the model-info API with file names only, as a mirror that ignores ?blobs=true might. */
  namesOnly = false;

  async start(): Promise<this> {
    for (const s of [this.hub, this.cdn]) {
      s.on('connection', (sock) => {
        this.open.add(sock);
        sock.on('close', () => this.open.delete(sock));
      });
      await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
    }
    this.hubUrl = `http://127.0.0.1:${(this.hub.address() as AddressInfo).port}`;
    this.cdnUrl = `http://${this.cdnHost}:${(this.cdn.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    for (const sock of this.open) sock.destroy();
    await Promise.all([this.hub, this.cdn].map((s) => new Promise<void>((r) => s.close(() => r()))));
  }

  private stalledResponses: http.ServerResponse[] = [];

  /** Drops the connections of stalled responses: a transfer cut at a known byte. */
  dropStalled(): void {
    for (const res of this.stalledResponses.splice(0)) res.destroy();
  }

  expectStall(): void {
    this.stalled = new Promise<void>((r) => (this.stalledResolve = r));
  }

  private isLfs(spec: RepoSpec, p: string): boolean {
    return (spec.lfs ?? defaultLfs)(p);
  }

  /** Looks up a repo as the hub does: 401 without a token for anything not public, 404 with one. */
  private repoFor(req: http.IncomingMessage, res: http.ServerResponse, name: string, forFile = false): RepoSpec | undefined {
    const spec = this.repos.get(name);
    const auth = req.headers.authorization;
    if (spec !== undefined && (spec.token === undefined || auth === `Bearer ${spec.token}` || (spec.gated === true && !forFile))) return spec;
    if (spec?.gated === true) {
      res.writeHead(auth === undefined ? 401 : 403, { 'x-error-code': 'GatedRepo', 'x-error-message': 'Access to this model is restricted' }).end();
      return undefined;
    }
    const status = auth === undefined ? 401 : 404;
    res.writeHead(status, { 'content-type': 'application/json', 'x-error-code': 'RepoNotFound', 'x-error-message': 'Repository not found' });
    res.end(JSON.stringify({ error: 'Repository not found' }));
    return undefined;
  }

  private handleHub(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', this.hubUrl);
    const entry: LoggedRequest = { server: 'hub', method: req.method ?? 'GET', path: url.pathname, sent: 0 };
    if (req.headers.range !== undefined) entry.range = req.headers.range;
    if (req.headers.authorization !== undefined) entry.authorization = req.headers.authorization;
    this.log.push(entry);
    let m = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/([^/]+)$/.exec(url.pathname);
    if (m !== null) {
      const spec = this.repoFor(req, res, m[1]!);
      if (spec === undefined) return;
      const rev = decodeURIComponent(m[2]!);
      if (rev !== spec.commit && !(spec.refs ?? ['main']).includes(rev)) {
        res.writeHead(404, { 'x-error-code': 'RevisionNotFound', 'x-error-message': `Invalid rev id: ${rev}` }).end();
        return;
      }
      const blobs = url.searchParams.get('blobs') === 'true' && !this.namesOnly;
      const siblings = Object.entries(spec.files).map(([p, data]) => {
        if (!blobs) return { rfilename: p };
        if (!this.isLfs(spec, p)) return { rfilename: p, blobId: gitBlobSha1(data), size: data.length };
        const pointer = Buffer.from(lfsPointer(data));
        return { rfilename: p, blobId: gitBlobSha1(pointer), size: data.length, lfs: { sha256: sha256(data), size: data.length, pointerSize: pointer.length } };
      });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ _id: 'x', id: m[1], modelId: m[1], private: spec.token !== undefined, sha: spec.commit, siblings }));
      return;
    }
    m = /^\/api\/models\/([^/]+\/[^/]+)\/tree\/([^/]+)$/.exec(url.pathname);
    if (m !== null) {
      // The tree listing huggingface_hub's snapshot_download reads (files only is enough for it).
      const spec = this.repoFor(req, res, m[1]!);
      if (spec === undefined) return;
      const entries = Object.entries(spec.files).map(([p, data]) => {
        if (!this.isLfs(spec, p)) return { type: 'file', oid: gitBlobSha1(data), size: data.length, path: p };
        const pointer = Buffer.from(lfsPointer(data));
        return { type: 'file', oid: gitBlobSha1(pointer), size: data.length, path: p, lfs: { oid: sha256(data), size: data.length, pointerSize: pointer.length } };
      });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(entries));
      return;
    }
    m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    if (m !== null) {
      const spec = this.repoFor(req, res, m[1]!, true);
      if (spec === undefined) return;
      const file = m[3]!.split('/').map(decodeURIComponent).join('/');
      const data = spec.files[file];
      if (data === undefined) {
        res.writeHead(404, { 'x-error-code': 'EntryNotFound', 'x-error-message': 'Entry not found', 'x-repo-commit': spec.commit }).end();
        return;
      }
      if (this.isLfs(spec, file)) {
        const hash = sha256(data);
        res.writeHead(302, {
          location: `${this.cdnUrl}/blobs/${hash}?name=${encodeURIComponent(file)}`,
          'x-repo-commit': spec.commit,
          'x-linked-etag': `"${hash}"`,
          'x-linked-size': String(data.length),
          etag: `"${gitBlobSha1(Buffer.from(lfsPointer(data)))}"`,
        });
        res.end();
        return;
      }
      this.send(req, res, entry, file, data, { etag: `"${gitBlobSha1(data)}"`, 'x-repo-commit': spec.commit });
      return;
    }
    res.writeHead(404).end();
  }

  private handleCdn(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', this.cdnUrl);
    const entry: LoggedRequest = { server: 'cdn', method: req.method ?? 'GET', path: url.pathname, sent: 0 };
    if (req.headers.range !== undefined) entry.range = req.headers.range;
    if (req.headers.authorization !== undefined) entry.authorization = req.headers.authorization;
    this.log.push(entry);
    const hash = /^\/blobs\/([0-9a-f]{64})$/.exec(url.pathname)?.[1];
    for (const spec of this.repos.values()) {
      for (const [p, data] of Object.entries(spec.files)) {
        if (hash !== undefined && sha256(data) === hash) {
          this.send(req, res, entry, p, data, { etag: `"${hash}"` });
          return;
        }
      }
    }
    res.writeHead(404).end();
  }

  /** Sends `data` (or its requested range), with any fault set for `file`. */
  private send(req: http.IncomingMessage, res: http.ServerResponse, entry: LoggedRequest, file: string, data: Uint8Array, headers: Record<string, string>): void {
    let start = 0;
    let status = 200;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const out: Record<string, string> = { ...headers, 'accept-ranges': 'bytes', 'content-type': 'application/octet-stream' };
    if (range !== null) {
      start = Number(range[1]);
      if (start >= data.length) {
        res.writeHead(416, { 'content-range': `bytes */${data.length}` }).end();
        return;
      }
      status = 206;
      out['content-range'] = `bytes ${start}-${data.length - 1}/${data.length}`;
    }
    let body = Buffer.from(data.subarray(start));
    out['content-length'] = String(body.length);
    res.writeHead(status, out);
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const fault = this.faults.get(file);
    if (fault !== undefined) {
      fault.times = (fault.times ?? 1) - 1;
      if (fault.times <= 0) this.faults.delete(file);
    }
    if (fault?.corrupt === true) {
      body = Buffer.from(body);
      body[body.length >> 1] ^= 0xff;
    }
    if (fault?.stallAfter !== undefined) {
      const part = body.subarray(0, fault.stallAfter);
      entry.sent = part.length;
      res.write(part, () => {
        this.stalledResponses.push(res);
        this.stalledResolve();
      });
      return;
    }
    entry.sent = body.length;
    res.end(body);
  }
}
