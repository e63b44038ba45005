/**
 * The measured half of the challenge benchmark, in a process of its own:
 * validateSubmission (every pixel read once), then scoreSubmission (which
 * checks the archive and the masks' headers, then reads every pixel once,
 * checking labels as it counts); print the seconds of each and this
 * process's peak RSS as JSON.
 */
import { readFile } from 'node:fs/promises';
import { scoreSubmission, validateSubmission, type ScoringSpec, type SlideTruth } from '../server/challenges/submissions/index.js';

const input = JSON.parse(await readFile(process.argv[2]!, 'utf8')) as { archive: string; spec: ScoringSpec; truths: Record<string, SlideTruth> };
let t0 = performance.now();
const report = await validateSubmission(input.archive, input.spec);
if (!report.ok) throw new Error(`the generated submission is invalid: ${report.problems[0]!.message}`);
const validateSeconds = (performance.now() - t0) / 1000;
t0 = performance.now();
const result = await scoreSubmission(input.archive, input.spec, (slide) => Promise.resolve(input.truths[slide.name]!));
const seconds = (performance.now() - t0) / 1000;
console.log(JSON.stringify({ seconds, validateSeconds, score: result.score, peakRssMiB: process.resourceUsage().maxRSS / 1024 }));
