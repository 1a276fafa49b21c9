// Package ring is the state machine of a ringing 1:1 call: from the
// moment the caller rings, through the callee's answer and the media
// connection, to hold, resume and the call's end.
//
// It does no I/O: no goroutines, no clock reads, no network. Every input
// carries its time (New, Call.Handle, Call.Tick); the notices to deliver
// are polled (Call.Poll); Call.NextWake says when Call.Tick is next due.
// The server owns one *Call per call, feeds it what its WebSockets and
// its timers report, and delivers the notices to devices.
//
// # Parties
//
// A user is an Ed25519 public key (as a string) with one or more devices.
// The caller rings from one device. Every online device of the callee
// rings, and devices that come online while it rings (DeviceAdded) ring
// too; the first to answer wins, and the others get a stop-ringing notice
// with ReasonAnsweredElsewhere and no tone. A decline (or a busy) from
// any one ringing device ends the call for all of them: a user who
// declines on one device means it. When every ringing device goes offline
// (DeviceGone), the call ends as ReasonUnavailable; so does a call whose
// callee has no online device at New. When the server already knows the
// callee is busy (Params.Busy), the call starts Ended with ReasonBusy and
// nothing rings.
//
// Auto-answer (Params.AutoAnswer) applies only when the caller calls
// their own user, to reach an always-on device of theirs: the first
// auto-answer device ringing answers at once (at New, or when it comes
// online while the call rings), and the others stop or never ring. A call
// from another user never auto-answers: nobody else may switch on your
// camera and microphone. The caller's own device never rings.
//
// # States and transitions
//
// The server's view is a State; each side sees a ViewState: the caller
// OutgoingRinging and the callee's devices IncomingRinging while Ringing,
// then both ViewConnecting, ViewActive, ViewHeld, ViewEnded. Events with
// their side, in each state ("d" is a ringing callee device):
//
//	state        event                           next        reason
//	-----------  ------------------------------  ----------  -----------
//	(New)        Params.Busy                     Ended       busy
//	(New)        no callee device                Ended       unavailable
//	(New)        own user, auto-answer device    Connecting
//	(New)        otherwise                       Ringing
//	Ringing      Answer(d)                       Connecting  (others: answered-elsewhere)
//	Ringing      Decline(d)                      Ended       declined
//	Ringing      Busy(d)                         Ended       busy
//	Ringing      Cancel, Hangup(caller)          Ended       cancelled
//	Ringing      DeviceAdded(new device)         Ringing     (it rings; or answers, if auto)
//	Ringing      DeviceGone(d), others ring      Ringing     (no notice)
//	Ringing      DeviceGone(last d)              Ended       unavailable
//	Ringing      Lost(caller), Back(caller)      Ringing     (watchdog on, off)
//	Ringing      Tick at no-answer deadline      Ended       no-answer
//	Connecting   Joined(s), other side not yet   Connecting  (no notice)
//	Connecting   Joined(s), other side joined    Active
//	Connecting   Tick at connect deadline        Ended       failed
//	Active       Hold(s)                         Held
//	Held         Hold(s), s does not hold        Held        (HeldBy changes)
//	Held         Resume(s), s holds, other too   Held        (HeldBy changes)
//	Held         Resume(s), s the only holder    Active
//	Conn/Act/Hd  Hangup(s)                       Ended       hangup
//	Conn/Act/Hd  Lost(s) not lost, Back(s) lost  unchanged   (watchdog on, off)
//	not Ended    Tick at s's lost deadline       Ended       lost
//	Ended        any event                       error       (Tick: nothing)
//
// Any other event (an answer after the end, a hold while ringing, Cancel
// after the answer, a second Joined, Resume by the side that does not
// hold, Answer from the caller's side, Lost(callee) while ringing, ...)
// returns an error wrapping ErrInvalid, or ErrUnknownDevice for a device
// that is not ringing (or not the side's device in the call), and changes
// nothing. Ended is terminal.
//
// The call is Held while at least one side holds; each side resumes only
// its own hold, and every notice says who holds (Notice.HeldBy). Hold is
// valid only when Active or Held.
//
// After the answer, both sides must join the media room (Joined) within
// Timeouts.Connect, or the call fails. A side whose connection drops
// (Lost) has Timeouts.Lost to come back (Back, the group call's resume);
// otherwise the call ends as ReasonLost and the other side is told. So
// every call ends once its parties stop acting, except an Active or Held
// one with both sides present, which lasts until someone hangs up.
//
// # Notices and tones
//
// Every change of what a device's side sees (its view state, the end
// reason, who holds) produces one Notice per device in the call: the
// caller's device, and the callee's ringing devices or, after the answer,
// the answering device. An event that changes nothing a device sees
// produces none. The tone to play: ToneRingback for the caller while
// outgoing ringing; ToneBusy for the caller when the call ends busy;
// ToneEnded for any device told the call ended otherwise, except a device
// stopped as answered elsewhere and a callee device told of a busy end (it
// is in another call), which get ToneNone; ToneNone in every other state.
//
// Deadlines: Handle fires the deadlines due by its now before applying
// its event, as Tick would, so an answer late past the no-answer deadline
// finds the call ended. A call that times out ends at its deadline
// (Call.Ended), however late the Tick. A now earlier than one seen before
// counts as that one.
package ring
