// Feature names -> words a study coordinator understands. A model's top contribution comes
// as "name:signed value" (e.g. "eeg_alpha_rel_af7:-0.300"): the value is how far that
// feature moved the estimate up (+) or down (-).
"use strict";
(function () {
  const SIGNALS = [
    ["hrv_mean_hr", "average heart rate"],
    ["hrv_mean_nn", "time between heartbeats"],
    ["hrv_rmssd", "beat-to-beat heart-rate variability (RMSSD)"],
    ["hrv_sdnn", "overall heart-rate variability (SDNN)"],
    ["hrv_pnn50", "share of large beat-to-beat changes (pNN50)"],
    ["hrv_lf_hf", "balance of slow to fast heart-rhythm changes (LF/HF)"],
    ["hrv_lf", "slow heart-rhythm changes (LF power)"],
    ["hrv_hf", "breathing-linked heart-rhythm changes (HF power)"],
    ["hrv_sd1", "short-term heart-rate variability (SD1)"],
    ["hrv_sd2", "long-term heart-rate variability (SD2)"],
    ["eda_tonic_mean", "skin conductance level (sweat, slow)"],
    ["eda_tonic_slope", "rise or fall of skin conductance"],
    ["eda_phasic_std", "skin conductance fluctuations"],
    ["eda_scr_count", "number of skin conductance responses"],
    ["eda_scr_rate", "rate of skin conductance responses"],
    ["eda_scr_amplitude_mean", "size of skin conductance responses"],
    ["eda_scr_risetime_mean", "rise time of skin conductance responses"],
    ["eeg_engagement", "EEG engagement index"],
    ["eeg_faa", "EEG frontal alpha asymmetry"],
    ["eeg_alpha", "EEG alpha rhythm (relaxed wakefulness)"],
    ["eeg_beta", "EEG beta rhythm (active thinking)"],
    ["eeg_theta", "EEG theta rhythm (drowsiness, effort)"],
    ["eeg_delta", "EEG delta rhythm (slow waves)"],
    ["eeg_gamma", "EEG gamma rhythm (fast activity, often muscle)"],
    ["acc_mag_mean", "movement"],
    ["acc_mag_std", "movement variability"],
    ["temp_mean", "skin temperature"],
    ["temp_slope", "skin temperature change"],
  ];
  const SITES = {
    tp9: "behind the left ear", tp10: "behind the right ear",
    af7: "left forehead", af8: "right forehead", fp1: "left forehead", fp2: "right forehead",
  };

  function describe(raw) {
    if (!raw || typeof raw !== "string") return null;
    const cut = raw.lastIndexOf(":");
    const name = cut >= 0 ? raw.slice(0, cut) : raw;
    const value = cut >= 0 ? Number(raw.slice(cut + 1)) : NaN;
    let rest = name;
    const context = rest.endsWith("_ctx120s");
    if (context) rest = rest.slice(0, -"_ctx120s".length);
    let words = null;
    let tail = "";
    for (const [prefix, text] of SIGNALS) {
      if (rest === prefix || rest.startsWith(prefix + "_")) {
        words = text;
        tail = rest.slice(prefix.length + 1);
        break;
      }
    }
    if (words === null) words = name.replace(/_/g, " ");
    const parts = tail.split("_").filter(Boolean);
    const extras = [];
    if (parts.includes("rel")) extras.push("share of power");
    else if (parts.includes("abs")) extras.push("power");
    const site = parts.find((p) => SITES[p]);
    if (site) extras.push(SITES[site]);
    if (context) extras.push("over the last 2 minutes");
    const text = words + (extras.length ? " (" + extras.join(", ") + ")" : "");
    let effect = "";
    if (Number.isFinite(value)) {
      effect = value > 0 ? "raised the estimate" : value < 0 ? "lowered the estimate" : "no effect";
    }
    return { feature: name, text, effect, value };
  }

  window.Words = { describe };
})();
