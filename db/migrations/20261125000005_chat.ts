import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  // Chat messages of an auction; each takes the auction's next seq (its
  // chat.message event is in the outbox with it), a deletion takes another.
  await knex.schema.createTable('chat_messages', (t) => {
    t.uuid('id').primary({ constraintName: 'chat_messages_pkey' }).defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('auction_id').notNullable().references('auctions.id').onDelete('CASCADE').withKeyName('chat_messages_auction_fk');
    t.uuid('user_id').notNullable().references('users.id').onDelete('CASCADE').withKeyName('chat_messages_user_fk');
    t.text('text').notNullable();
    t.text('client_msg_id');
    t.bigInteger('seq').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('deleted_at', { useTz: true });
    t.uuid('deleted_by').references('users.id').withKeyName('chat_messages_deleter_fk');
    t.check('char_length(text) between 1 and 500', [], 'chat_messages_text_check');
  });
  await knex.raw('create index chat_messages_history_idx on chat_messages (auction_id, seq desc) where deleted_at is null');
  await knex.raw('create unique index chat_messages_client_unique on chat_messages (auction_id, user_id, client_msg_id) where client_msg_id is not null');
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('chat_messages');
}
