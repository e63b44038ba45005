/** The challenges' vocabulary, shared by the repository, the service, the scorer, the routes and the command line. */

export const CHALLENGE_TASKS = ['segmentation', 'tumour-burden', 'classification'] as const;
export type ChallengeTaskName = (typeof CHALLENGE_TASKS)[number];

export const LEADERBOARD_MODES = ['best', 'latest'] as const;
export type LeaderboardMode = (typeof LEADERBOARD_MODES)[number];

export const LEADERBOARD_VISIBILITY = ['public', 'hidden'] as const;
export type LeaderboardVisibility = (typeof LEADERBOARD_VISIBILITY)[number];

export const SUBMISSION_STATUSES = ['invalid', 'queued', 'scoring', 'scored', 'failed'] as const;
export type SubmissionStatus = (typeof SUBMISSION_STATUSES)[number];

/** What a challenge and a phase may be called: they appear in paths and file names. */
export const CHALLENGE_NAME = /^[a-z0-9][a-z0-9._-]{0,99}$/;
export const PHASE_NAME = /^[a-z0-9][a-z0-9._-]{0,49}$/;

export const DEFAULTS = {
  maskDownsample: 16,
  threshold: 0.65,
  dailyLimit: 5,
  teamSize: 5,
  leaderboardMode: 'best' as LeaderboardMode,
};

export interface Challenge {
  id: number;
  name: string;
  title: string;
  description: string;
  rules: string;
  rulesVersion: number;
  task: ChallengeTaskName;
  trainReleaseId: number;
  testReleaseId: number;
  maskDownsample: number;
  threshold: number;
  dailyLimit: number;
  teamSize: number;
  leaderboardMode: LeaderboardMode;
  truthPublishedAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface Phase {
  id: number;
  challengeId: number;
  name: string;
  opensAt: Date;
  closesAt: Date;
  /** Slide ids of the test release; null: all of them. */
  slides: number[] | null;
  /** Null: the challenge's. */
  dailyLimit: number | null;
  leaderboard: LeaderboardVisibility;
}

export interface Team {
  id: number;
  challengeId: number;
  name: string;
  createdBy: number | null;
  createdAt: Date;
  members: { userId: number; name: string; email: string; joinedAt: Date }[];
}

export interface Invitation {
  id: number;
  teamId: number;
  email: string;
  invitedBy: number | null;
  createdAt: Date;
  acceptedAt: Date | null;
}

export interface Submission {
  id: number;
  challengeId: number;
  phaseId: number;
  teamId: number;
  userId: number | null;
  fileName: string;
  size: number;
  status: SubmissionStatus;
  report: unknown;
  progress: number;
  score: number | null;
  tieBreakers: number[] | null;
  metrics: Record<string, number> | null;
  error: string | null;
  late: boolean;
  createdAt: Date;
  scoredAt: Date | null;
}

export interface SlideResult {
  slide: string;
  score: number;
  metrics: Record<string, number>;
}

/** The start of the UTC day `now` falls in: daily limits count from there. */
export function dayStart(now: Date): Date {
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
}
