// MSE plumbing: one SourceBuffer per kind (video, audio) in segments mode,
// fed in order, with back-buffer eviction and QuotaExceededError recovery.

export const MediaSourceImpl = globalThis.ManagedMediaSource || globalThis.MediaSource;

export function mimeOf(r) {
  return `${r.kind}/mp4; codecs="${r.codec}"`;
}

export function supported(r) {
  return !!MediaSourceImpl && MediaSourceImpl.isTypeSupported(mimeOf(r));
}

const BACK_BUFFER = 30; // seconds kept behind the playhead
const HARD_BACK_BUFFER = 4; // after a QuotaExceededError

export class Track {
  constructor(ms, video, rendition, onError) {
    this.video = video;
    this.mime = mimeOf(rendition);
    this.sb = ms.addSourceBuffer(this.mime);
    this.sb.mode = 'segments';
    this.queue = [];
    this.onError = onError;
    this.appended = 0; // media chunks appended
    this.sb.addEventListener('updateend', () => this.pump());
    this.sb.addEventListener('error', () => onError('append', 'the browser could not decode a chunk'));
  }

  // push queues an init segment or a chunk; r is its rendition's info.
  push(bytes, r, isInit) {
    this.queue.push({ bytes, mime: mimeOf(r), isInit });
    this.pump();
  }

  pump() {
    if (this.sb.updating || this.queue.length === 0) return;
    const item = this.queue[0];
    try {
      if (item.isInit && item.mime !== this.mime && this.sb.changeType) {
        this.sb.changeType(item.mime);
        this.mime = item.mime;
      }
      this.sb.appendBuffer(item.bytes);
      this.queue.shift();
      if (!item.isInit) this.appended++;
    } catch (e) {
      if (e.name === 'QuotaExceededError') {
        this.evict(HARD_BACK_BUFFER); // updateend of the removal pumps again
      } else if (e.name !== 'InvalidStateError') {
        this.queue.shift();
        this.onError('append', e.message);
      }
    }
  }

  // evict removes what lies more than keep seconds behind the playhead.
  evict(keep = BACK_BUFFER) {
    if (this.sb.updating) return;
    const b = this.sb.buffered;
    if (b.length === 0) return;
    const end = this.video.currentTime - keep;
    if (end > b.start(0) + 1) {
      try { this.sb.remove(b.start(0), end); } catch { /* removed next time */ }
    }
  }

  bufferedEnd() {
    const b = this.sb.buffered;
    return b.length ? b.end(b.length - 1) : 0;
  }
}
