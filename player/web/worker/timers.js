// A timer for the swarm node while its page is hidden. Browsers align the
// timers of a hidden page's main thread to one wake-up a second (and
// fewer later), which would hold the node's uploads to a trickle; a
// dedicated worker's timers are not throttled so, and its messages wake the
// page at once. Messages in: {id, ms} to set, {clear: id} to clear. Out:
// the id of each timer that fired.
const timers = new Map();
onmessage = (e) => {
  const { id, ms, clear } = e.data;
  if (clear !== undefined) {
    clearTimeout(timers.get(clear));
    timers.delete(clear);
    return;
  }
  timers.set(id, setTimeout(() => { timers.delete(id); postMessage(id); }, ms));
};
