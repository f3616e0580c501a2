"""A Patron segmenter written in Python (componentize-py), not with the Rust SDK.

Segments: `big-spender` (total spent >= 50,000 minor units), `loyal` (10+ orders).
Not a Cargo crate. Build: componentize-py -d ../../wit -w segmenter componentize app -o python_segmenter.wasm
"""

from wit_world import exports


class Segmentation(exports.Segmentation):
    def segment(self, profiles):
        answers = []
        for profile in profiles:
            segments = []
            if profile.stats.total_spent >= 50_000:
                segments.append("big-spender")
            if profile.stats.order_count >= 10:
                segments.append("loyal")
            answers.append(segments)
        return answers
