r"""How true are QA answers asked of lifted geometry? Procedural views, measured.

Renders procedural scenes, throws their 3D boxes away, lifts every object again from the
rendered depth and masks, asks QA of the lifted boxes, and re-derives every answer from the
true boxes (`jax_spatial.evaluate.lift_agreement`). Prints the agreement per task, the
lifting's median centre and extent errors, and the first disagreements.

  python bench/lift_agreement.py [--scenes 70] [--seed 7]
"""

import argparse
import json
import time

from jax_spatial.evaluate.lift_agreement import lifted_vs_truth
from jax_spatial.sources import get_source


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=70)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    start = time.perf_counter()
    source = get_source("procedural", "", num_scenes=args.scenes, seed=args.seed)
    report = lifted_vs_truth(source, source.scene_ids()).as_dict()
    shown = {k: v for k, v in report.items() if k != "disagreements"}
    print(json.dumps(shown, indent=1))
    for d in report["disagreements"][:10]:
        print(f"DISAGREE {d['scene_id']}/{d['frame_id']}: {d['question']} -> {d['answer']}")
    print(f"agreement {report['agreement']:.2%} on {report['qa']} QA from {report['views']} views")
    print(f"seconds {time.perf_counter() - start:.0f}")


if __name__ == "__main__":
    main()
