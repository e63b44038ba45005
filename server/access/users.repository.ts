import type { Knex } from 'knex';
import { fromDbTime, toDbTime } from '../db/index.js';

export type Level = 'L0' | 'L1' | 'L2' | 'L3';
export type StaffRole = 'admin' | 'curator' | 'pathologist';

export interface User {
  id: number;
  email: string;
  name: string;
  institution: string;
  /** The stored level; what counts on a request is levels.ts's effectiveLevel. */
  level: Level;
  /** When the level lapses to L1 (an L2 from a DUA); null: it does not. */
  levelExpiresAt: Date | null;
  roles: StaffRole[];
  emailConfirmedAt: Date | null;
  disabledAt: Date | null;
  lastLoginAt: Date | null;
  /** The password was chosen by somebody else (the initial administrator's printed one): the portal asks for a new one first. Read from the database always; absent means no. */
  mustChangePassword?: boolean;
  /** Where the account comes from: `local`, `ldap` or `oidc:<provider>` (see access/directory/). Absent means local. */
  source?: string;
  /** An administrator turned the local password off: the account logs in through its directory or provider only. */
  localLoginDisabled?: boolean;
  createdAt: Date;
}

export interface NewUser {
  email: string;
  name?: string;
  institution?: string;
  passwordHash: string | null;
  level: Level;
  levelExpiresAt?: Date | null;
  roles: StaffRole[];
  emailConfirmedAt: Date | null;
  mustChangePassword?: boolean;
}

export interface UserSearch {
  /** Matches e-mail, name or institution, case-insensitively. */
  q?: string;
  level?: Level;
  role?: StaffRole;
  status?: 'active' | 'disabled' | 'unconfirmed';
  limit: number;
  offset: number;
}

interface UserRow {
  id: number;
  email: string;
  name: string;
  institution: string;
  level: Level;
  level_expires_at: string | null;
  email_confirmed_at: string | null;
  disabled_at: string | null;
  last_login_at: string | null;
  must_change_password: boolean | number;
  source: string;
  local_login_disabled: boolean | number;
  created_at: string;
}

/** A user's row joined with one of their roles (null without any), and the password hash when asked for. */
type JoinedRow = UserRow & { role: StaffRole | null; password_hash?: string | null };

const USER_COLUMNS: string[] = [
  'id',
  'email',
  'name',
  'institution',
  'level',
  'level_expires_at',
  'email_confirmed_at',
  'disabled_at',
  'last_login_at',
  'must_change_password',
  'source',
  'local_login_disabled',
  'created_at',
];

const dbTime = (date: Date | null | undefined) => (date ? toDbTime(date) : null);
const fromNullable = (value: string | null) => (value ? fromDbTime(value) : null);

/** Every query on users and their roles. Methods that change a user take the transaction the caller also records the audit event in. */
export class UsersRepository {
  constructor(private readonly knex: Knex) {}

  /** Run `work` in one transaction; pass the transaction on to the methods below and to AuditLog.record. */
  transaction<T>(work: (trx: Knex.Transaction) => Promise<T>): Promise<T> {
    return this.knex.transaction(work);
  }

  /** Creates the user and roles in one transaction; a duplicate e-mail raises the database's unique violation. */
  async create(user: NewUser, now = new Date(), trx?: Knex): Promise<User> {
    const insert = async (db: Knex) => {
      const [inserted] = await db('users')
        .insert({
          email: user.email.toLowerCase(),
          name: user.name ?? '',
          institution: user.institution ?? '',
          password_hash: user.passwordHash,
          level: user.level,
          level_expires_at: dbTime(user.levelExpiresAt),
          email_confirmed_at: dbTime(user.emailConfirmedAt),
          password_changed_at: user.passwordHash ? toDbTime(now) : null,
          must_change_password: user.mustChangePassword ?? false,
          created_at: toDbTime(now),
          updated_at: toDbTime(now),
        })
        .returning('id');
      const id = typeof inserted === 'object' ? (inserted as { id: number }).id : (inserted as number);
      if (user.roles.length > 0) await db('user_roles').insert(user.roles.map((role) => ({ user_id: id, role })));
      const created = await this.findById(id, db);
      if (!created) throw new Error(`user ${id} vanished inside its own transaction`);
      return created;
    };
    return trx ? insert(trx) : this.knex.transaction(insert);
  }

  /** Every request's requester is read with this: one query. */
  async findById(id: number, trx: Knex = this.knex): Promise<User | undefined> {
    return (await this.findOne({ 'users.id': id }, [], trx))?.user;
  }

  async findByEmail(email: string, trx: Knex = this.knex): Promise<User | undefined> {
    return (await this.findOne({ 'users.email': email.toLowerCase() }, [], trx))?.user;
  }

  /** The user and the stored password hash, for logging in. */
  async findCredentials(email: string): Promise<{ user: User; passwordHash: string | null } | undefined> {
    const found = await this.findOne({ 'users.email': email.toLowerCase() }, ['password_hash'], this.knex);
    return found ? { user: found.user, passwordHash: found.row.password_hash ?? null } : undefined;
  }

  async passwordHash(id: number): Promise<string | null> {
    const row = await this.knex('users').where({ id }).first('password_hash');
    return (row?.password_hash as string | null | undefined) ?? null;
  }

  async setPassword(id: number, passwordHash: string, now: Date, trx: Knex = this.knex): Promise<void> {
    await trx('users')
      .where({ id })
      .update({ password_hash: passwordHash, password_changed_at: toDbTime(now), must_change_password: false, updated_at: toDbTime(now) });
  }

  /** Marks the address confirmed and raises L0 to L1. False when it was confirmed already. */
  async confirmEmail(id: number, now: Date, trx: Knex = this.knex): Promise<boolean> {
    const changed = await trx('users')
      .where({ id })
      .whereNull('email_confirmed_at')
      .update({ email_confirmed_at: toDbTime(now), updated_at: toDbTime(now) });
    if (changed > 0) await trx('users').where({ id, level: 'L0' }).update({ level: 'L1' });
    return changed > 0;
  }

  async setLevel(id: number, level: Level, expiresAt: Date | null, now: Date, trx: Knex = this.knex): Promise<void> {
    await trx('users').where({ id }).update({ level, level_expires_at: dbTime(expiresAt), updated_at: toDbTime(now) });
  }

  async setRoles(id: number, roles: readonly StaffRole[], now: Date, trx: Knex = this.knex): Promise<void> {
    await trx('user_roles').where({ user_id: id }).del();
    if (roles.length > 0) await trx('user_roles').insert(roles.map((role) => ({ user_id: id, role })));
    await trx('users').where({ id }).update({ updated_at: toDbTime(now) });
  }

  async setDisabled(id: number, disabledAt: Date | null, now: Date, trx: Knex = this.knex): Promise<void> {
    await trx('users').where({ id }).update({ disabled_at: dbTime(disabledAt), updated_at: toDbTime(now) });
  }

  async setProfile(id: number, profile: { name: string; institution: string }, now: Date): Promise<void> {
    await this.knex('users').where({ id }).update({ ...profile, updated_at: toDbTime(now) });
  }

  async recordLogin(id: number, now: Date): Promise<void> {
    await this.knex('users').where({ id }).update({ last_login_at: toDbTime(now) });
  }

  async countWithRole(role: StaffRole): Promise<number> {
    const result = await this.knex('user_roles').where({ role }).count({ n: '*' }).first();
    return Number(result?.n ?? 0);
  }

  /** Accounts holding the role that are not disabled. */
  async countActiveWithRole(role: StaffRole, trx: Knex = this.knex): Promise<number> {
    const result = await trx('user_roles')
      .join('users', 'users.id', 'user_roles.user_id')
      .where('user_roles.role', role)
      .whereNull('users.disabled_at')
      .count({ n: '*' })
      .first();
    return Number(result?.n ?? 0);
  }

  async search(criteria: UserSearch): Promise<{ items: User[]; total: number }> {
    const query = this.knex('users');
    if (criteria.q) {
      // '!' escapes LIKE's wildcards: a backslash would itself need escaping on MariaDB but not on SQLite.
      const pattern = `%${criteria.q.replace(/[!%_]/g, (c) => `!${c}`)}%`;
      query.where((w) => {
        w.whereRaw("lower(email) like lower(?) escape '!'", [pattern])
          .orWhereRaw("lower(name) like lower(?) escape '!'", [pattern])
          .orWhereRaw("lower(institution) like lower(?) escape '!'", [pattern]);
      });
    }
    if (criteria.level) query.where({ level: criteria.level });
    if (criteria.role) query.whereIn('id', this.knex('user_roles').select('user_id').where({ role: criteria.role }));
    if (criteria.status === 'active') query.whereNull('disabled_at').whereNotNull('email_confirmed_at');
    if (criteria.status === 'disabled') query.whereNotNull('disabled_at');
    if (criteria.status === 'unconfirmed') query.whereNull('email_confirmed_at');

    const counted = await query.clone().count({ n: '*' }).first();
    const rows = (await query.select(USER_COLUMNS).orderBy('email').limit(criteria.limit).offset(criteria.offset)) as UserRow[];
    const roles = await this.rolesOf(rows.map((row) => row.id), this.knex);
    return { items: rows.map((row) => toUser(row, roles.get(row.id) ?? [])), total: Number(counted?.n ?? 0) };
  }

  /** Everyone, for `slidebank user list`. */
  async all(): Promise<User[]> {
    const rows = (await this.knex('users').select(USER_COLUMNS).orderBy('email')) as UserRow[];
    const roles = await this.rolesOf(rows.map((row) => row.id), this.knex);
    return rows.map((row) => toUser(row, roles.get(row.id) ?? []));
  }

  /** One user with their roles, joined: the user's row comes once per role, or once with a null role. */
  private async findOne(where: Record<string, unknown>, extra: 'password_hash'[], trx: Knex): Promise<{ user: User; row: JoinedRow } | undefined> {
    const rows = (await trx('users')
      .leftJoin('user_roles', 'user_roles.user_id', 'users.id')
      .select([...[...USER_COLUMNS, ...extra].map((column) => `users.${column}`), 'user_roles.role'])
      .where(where)
      .orderBy('user_roles.role')) as JoinedRow[];
    const [row] = rows;
    return row ? { user: toUser(row, rows.flatMap((r) => (r.role ? [r.role] : []))), row } : undefined;
  }

  private async rolesOf(ids: number[], trx: Knex): Promise<Map<number, StaffRole[]>> {
    const byUser = new Map<number, StaffRole[]>();
    if (ids.length === 0) return byUser;
    const rows = (await trx('user_roles').whereIn('user_id', ids).orderBy('role').select('user_id', 'role')) as {
      user_id: number;
      role: StaffRole;
    }[];
    for (const row of rows) byUser.set(row.user_id, [...(byUser.get(row.user_id) ?? []), row.role]);
    return byUser;
  }
  /** For the clean-up job: accounts never confirmed and created before `before`, staff excepted. Returns their ids. */
  async deleteUnconfirmedBefore(before: Date): Promise<number[]> {
    const ids = (await this.knex('users')
      .whereNull('email_confirmed_at')
      .where('created_at', '<', toDbTime(before))
      .whereNotExists((q) => {
        q.select(this.knex.raw('1')).from('user_roles').whereRaw('user_roles.user_id = users.id');
      })
      .pluck('id')) as number[];
    if (ids.length > 0) await this.knex('users').whereIn('id', ids).del();
    return ids;
  }
}

function toUser(row: UserRow, roles: StaffRole[]): User {
  return {
    id: row.id,
    email: row.email,
    name: row.name,
    institution: row.institution,
    level: row.level,
    levelExpiresAt: fromNullable(row.level_expires_at),
    roles,
    emailConfirmedAt: fromNullable(row.email_confirmed_at),
    disabledAt: fromNullable(row.disabled_at),
    lastLoginAt: fromNullable(row.last_login_at),
    mustChangePassword: Boolean(row.must_change_password),
    source: row.source,
    localLoginDisabled: Boolean(row.local_login_disabled),
    createdAt: fromDbTime(row.created_at),
  };
}
