import type { Knex } from 'knex';
import { fromDbTime, toDbTime } from '../db/index.js';

export type Level = 'L0' | 'L1' | 'L2' | 'L3';
export type StaffRole = 'admin' | 'curator' | 'pathologist';

export interface User {
  id: number;
  email: string;
  name: string;
  institution: string;
  level: Level;
  roles: StaffRole[];
  emailConfirmedAt: Date | null;
  disabledAt: Date | null;
  createdAt: Date;
}

export interface NewUser {
  email: string;
  name?: string;
  institution?: string;
  passwordHash: string | null;
  level: Level;
  roles: StaffRole[];
  emailConfirmedAt: Date | null;
}

interface UserRow {
  id: number;
  email: string;
  name: string;
  institution: string;
  level: Level;
  email_confirmed_at: string | null;
  disabled_at: string | null;
  created_at: string;
}

/** Every query on users and their roles. */
export class UsersRepository {
  constructor(private readonly knex: Knex) {}

  /** Creates the user and roles in one transaction; a duplicate e-mail raises the database's unique violation. */
  async create(user: NewUser, now = new Date()): Promise<User> {
    return this.knex.transaction(async (trx) => {
      const [inserted] = await trx('users')
        .insert({
          email: user.email.toLowerCase(),
          name: user.name ?? '',
          institution: user.institution ?? '',
          password_hash: user.passwordHash,
          level: user.level,
          email_confirmed_at: user.emailConfirmedAt ? toDbTime(user.emailConfirmedAt) : null,
          created_at: toDbTime(now),
          updated_at: toDbTime(now),
        })
        .returning('id');
      const id = typeof inserted === 'object' ? (inserted as { id: number }).id : (inserted as number);
      if (user.roles.length > 0) await trx('user_roles').insert(user.roles.map((role) => ({ user_id: id, role })));
      const created = await this.findById(id, trx);
      if (!created) throw new Error(`user ${id} vanished inside its own transaction`);
      return created;
    });
  }

  async findById(id: number, trx: Knex = this.knex): Promise<User | undefined> {
    const row = await trx<UserRow>('users').where({ id }).first();
    return row ? this.withRoles(row, trx) : undefined;
  }

  async findByEmail(email: string): Promise<User | undefined> {
    const row = await this.knex<UserRow>('users').where({ email: email.toLowerCase() }).first();
    return row ? this.withRoles(row, this.knex) : undefined;
  }

  async countWithRole(role: StaffRole): Promise<number> {
    const result = await this.knex('user_roles').where({ role }).count({ n: '*' }).first();
    return Number(result?.n ?? 0);
  }

  private async withRoles(row: UserRow, trx: Knex): Promise<User> {
    const roles = await trx('user_roles').where({ user_id: row.id }).orderBy('role').pluck('role');
    return {
      id: row.id,
      email: row.email,
      name: row.name,
      institution: row.institution,
      level: row.level,
      roles: roles as StaffRole[],
      emailConfirmedAt: row.email_confirmed_at ? fromDbTime(row.email_confirmed_at) : null,
      disabledAt: row.disabled_at ? fromDbTime(row.disabled_at) : null,
      createdAt: fromDbTime(row.created_at),
    };
  }
}
