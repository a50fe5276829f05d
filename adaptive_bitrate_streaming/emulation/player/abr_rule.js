// The ABR rule and the player's bookkeeping. window.trailblazer holds what the run collects: every report
// sent (one per segment), the answers, stalls, the startup delay, and done when the last segment is in.
const TOTAL_SEGMENTS = 48;      // the simulator's episode; the video holds one more for MPC's look-ahead
const DEFAULT_QUALITY = 1;      // the first segment's bitrate, as the simulator's
const BUFFER_S = 60;            // the simulator's buffer threshold

window.trailblazer = {reports: [], answers: [], stalls: [], startupMs: null, done: false, error: null,
                      notAsAnswered: 0};  // segments dash.js fetched at another bitrate than the answer

function startPlayer(video, status) {
  const params = new URLSearchParams(window.location.search);
  const abrUrl = params.get("abr"), sizesUrl = params.get("sizes") || "video/sizes.json";
  const lastSegment = Math.min(TOTAL_SEGMENTS, parseInt(params.get("segments") || TOTAL_SEGMENTS, 10)) - 1;
  const state = window.trailblazer;
  const sizesRequest = new XMLHttpRequest();
  sizesRequest.open("GET", sizesUrl, false);
  sizesRequest.send();
  const sizes = JSON.parse(sizesRequest.responseText);  // sizes[rung][segment], lowest bitrate first
  const opened = performance.now();
  let stallStart = opened, totalStallMs = 0, lastQuality = DEFAULT_QUALITY, decided = 0, nextQuality = DEFAULT_QUALITY;

  video.addEventListener("playing", () => {
    if (stallStart !== null) {
      const ms = performance.now() - stallStart;
      if (state.startupMs === null) state.startupMs = ms; else state.stalls.push(ms);
      totalStallMs += ms;
      stallStart = null;
    }
  });
  video.addEventListener("waiting", () => { if (stallStart === null && state.startupMs !== null) stallStart = performance.now(); });

  function stalledMs() { return totalStallMs + (stallStart === null ? 0 : performance.now() - stallStart); }

  // one decision per segment: segment k + 1's bitrate is asked after segment k is in
  function decide(segment, request, player) {
    const report = {
      lastRequest: segment, lastquality: lastQuality, buffer: player.getDashMetrics().getCurrentBufferLevel("video") || 0,
      RebufferTime: stalledMs(), lastChunkStartTime: request.startDate.getTime(),
      lastChunkFinishTime: Math.max(request.endDate.getTime(), request.startDate.getTime() + 1),
      lastChunkSize: request.bytesLoaded || request.bytesTotal, nextChunkSize: sizes.map(rung => rung[Math.min(segment + 1, rung.length - 1)]),
    };
    state.reports.push(report);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", abrUrl, false);  // synchronous, as Pensieve's player: the next request waits for the answer
    xhr.setRequestHeader("Content-Type", "application/json");
    xhr.send(JSON.stringify(report));
    const answer = xhr.responseText.trim();
    state.answers.push(answer);
    if (xhr.status !== 200) { state.error = `ABR server: ${xhr.status} ${answer}`; return lastQuality; }
    if (answer === "REFRESH" || segment >= lastSegment) { state.done = true; return lastQuality; }
    return parseInt(answer, 10);
  }

  function TrailblazerRuleClass() {
    const context = this.context;
    const SwitchRequest = dashjs.FactoryMaker.getClassFactoryByName("SwitchRequest");
    function getSwitchRequest(rulesContext) {
      const switchRequest = SwitchRequest(context).create();
      if (rulesContext.getMediaType() !== "video") return switchRequest;
      const representations = rulesContext.getAbrController()
        .getPossibleVoRepresentations(rulesContext.getMediaInfo(), true).slice().sort((a, b) => a.bandwidth - b.bandwidth);
      switchRequest.representation = representations[Math.min(nextQuality, representations.length - 1)];
      switchRequest.reason = {rule: "TrailblazerRule", quality: nextQuality};
      if (SwitchRequest.PRIORITY) switchRequest.priority = SwitchRequest.PRIORITY.STRONG;
      return switchRequest;
    }
    return {getSwitchRequest};
  }
  TrailblazerRuleClass.__dashjs_factory_name = "TrailblazerRule";

  const player = dashjs.MediaPlayer().create();
  player.updateSettings({streaming: {
    buffer: {bufferTimeAtTopQuality: BUFFER_S, bufferTimeAtTopQualityLongForm: BUFFER_S, bufferTimeDefault: BUFFER_S,
             fastSwitchEnabled: false},
    abr: {autoSwitchBitrate: {video: true},
          rules: {throughputRule: {active: false}, bolaRule: {active: false}, insufficientBufferRule: {active: false},
                  switchHistoryRule: {active: false}, droppedFramesRule: {active: false},
                  abandonRequestsRule: {active: false}, l2ARule: {active: false}, loLPRule: {active: false}}},
  }});
  player.addABRCustomRule("qualitySwitchRules", "TrailblazerRule", dashjs.FactoryMaker.getClassFactory(TrailblazerRuleClass));
  player.on(dashjs.MediaPlayer.events.FRAGMENT_LOADING_COMPLETED, (event) => {
    const request = event.request;
    if (!request || request.mediaType !== "video" || request.type !== "MediaSegment" || state.done) return;
    const segment = decided;
    decided += 1;
    // the rung dash.js actually fetched: the manifest's representation ids are the rungs, lowest first
    lastQuality = request.representationId !== undefined ? parseInt(request.representationId, 10) : nextQuality;
    if (lastQuality !== nextQuality) state.notAsAnswered += 1;
    nextQuality = decide(segment, request, player);
    status.textContent = `segment ${segment}: bitrate index ${lastQuality}, buffer ${state.reports[segment].buffer.toFixed(1)} s, ` +
      `stalls ${(stalledMs() / 1000).toFixed(2)} s; next ${state.done ? "done" : nextQuality}`;
  });
  player.on(dashjs.MediaPlayer.events.ERROR, (event) => { state.error = JSON.stringify(event.error || event); });
  player.initialize(video, params.get("mpd") || "video/manifest.mpd", true);
}
