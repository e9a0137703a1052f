/** The call engine's Prometheus metrics, created once per registry. */
import type { MetricsRegistry } from '../metrics/registry.js';

export function createEngineMetrics(r: MetricsRegistry) {
  return {
    callsActive: r.gauge('switchboard_calls_active', 'Calls currently in progress'),
    callsTotal: r.counter('switchboard_calls_total', 'Calls ended, by outcome'),
    callsHandedOff: r.counter('switchboard_calls_handed_off_total', 'Callers Switchboard gave to the overflow target (humans), by reason'),
    // By dialplan target (allowlisted, never free text); the reasons are in the business metrics.
    transfers: r.counter('switchboard_call_transfers_total', 'Callers transferred by the agent, by dialplan target'),
    callsRejected: r.counter('switchboard_calls_rejected_total', 'Calls not admitted, by reason'),
    setupFailures: r.counter('switchboard_call_setup_failures_total', 'Call setups that failed, by step'),
    ariEventsIgnored: r.counter('switchboard_ari_events_ignored_total', 'ARI events of known types the engine does not act on'),
    ariEventsUnknown: r.counter('switchboard_ari_events_unknown_total', 'ARI events of unexpected types or shapes, by type'),
    ariReconnects: r.counter('switchboard_ari_reconnects_total', 'ARI connection losses'),
    rtpDropped: r.counter('switchboard_rtp_dropped_total', 'Inbound RTP packets dropped, by reason'),
    syntheticSilence: r.counter('switchboard_inbound_silence_frames_total', 'Silence frames synthesised while the caller sent no RTP'),
    rtpConcealed: r.counter('switchboard_rtp_concealed_frames_total', 'Inbound frames concealed after loss'),
    rtpPacketsIn: r.counter('switchboard_rtp_packets_in_total', 'RTP packets received (ended calls)'),
    rtpPacketsOut: r.counter('switchboard_rtp_packets_out_total', 'RTP packets sent (ended calls)'),
    vadWindows: r.counter('switchboard_vad_windows_total', 'VAD windows inferred (ended calls)'),
    vadWindowsQuiet: r.counter('switchboard_vad_windows_quiet_total', 'VAD windows below the silence floor, decided unvoiced without the model (ended calls)'),
    vadWindowsDropped: r.counter('switchboard_vad_windows_dropped_total', 'VAD windows dropped because inference fell behind'),
    vadSpeechStarts: r.counter('switchboard_vad_speech_starts_total', 'VAD speech-start decisions'),
    vadSpeechEnds: r.counter('switchboard_vad_speech_ends_total', 'VAD end-of-turn decisions'),
    turnLatency: r.summary('switchboard_turn_latency_ms', "Caller's last speech packet to agent's first audio packet"),
    bargeInReaction: r.summary('switchboard_barge_in_reaction_ms', "Caller's speech onset during agent audio to agent's last audio packet"),
    bargeIns: r.counter('switchboard_barge_ins_total', 'Agent turns interrupted by the caller'),
    dtmf: r.counter('switchboard_dtmf_total', 'DTMF digits received'),
    agentErrors: r.counter('switchboard_agent_errors_total', 'Agent turns that failed, by agent'),
  };
}

export type EngineMetrics = ReturnType<typeof createEngineMetrics>;
