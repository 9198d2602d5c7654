import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('auctions', (t) => {
    // Receipt order of the bid holding the lead (proxy tie-break), and how far the
    // outbox has been published to the auction's Redis stream.
    t.bigInteger('leader_order').notNullable().defaultTo(0);
    t.bigInteger('published_seq').notNullable().defaultTo(0);
    t.timestamp('ended_at', { useTz: true });
    // The owner ended it early (PUT /end): the end is fixed, soft close no longer applies.
    t.boolean('hard_end').notNullable().defaultTo(false);
    t.check('starting_price > 0', [], 'auctions_starting_price_check');
    t.check('soft_close_seconds >= 0', [], 'auctions_soft_close_check');
    t.check('published_seq <= seq', [], 'auctions_published_seq_check');
  });
  await knex.raw("create index auctions_live_ends_idx on auctions (ends_at, id) where status = 'live'");
  await knex.raw('create index auctions_status_created_idx on auctions (status, created_at desc, id desc)');
  await knex.raw('create index auctions_seller_created_idx on auctions (seller_id, created_at desc, id desc)');
  await knex.raw("create index auctions_scheduled_starts_idx on auctions (starts_at) where status = 'scheduled'");
  await knex.raw('create index auctions_unpublished_idx on auctions (id) where published_seq < seq');
  // At most one open (scheduled or live) auction per product.
  await knex.raw("create unique index auctions_one_open_per_product on auctions (product_id) where status in ('scheduled', 'live')");

  // The receipt counter: bids are numbered under this row's lock, so the order of
  // commits is the order of numbers and a drain always sees a gap-free prefix.
  await knex.schema.createTable('auction_counters', (t) => {
    t.uuid('auction_id').primary({ constraintName: 'auction_counters_pkey' }).references('auctions.id').onDelete('CASCADE').withKeyName('auction_counters_auction_fk');
    t.bigInteger('receipts').notNullable().defaultTo(0);
  });

  // Every bid and auto-bid request, recorded durably before the edge answers 202.
  await knex.schema.createTable('bids', (t) => {
    t.uuid('id').primary({ constraintName: 'bids_pkey' });
    t.uuid('auction_id').notNullable().references('auctions.id').onDelete('CASCADE').withKeyName('bids_auction_fk');
    t.uuid('bidder_id').notNullable().references('users.id').withKeyName('bids_bidder_fk');
    t.text('kind').notNullable();
    t.bigInteger('amount').notNullable();
    t.bigInteger('receipt_no').notNullable();
    // The auction's bid partition (queues/names.ts), so a drain finds its partition's work.
    t.smallint('partition').notNullable().defaultTo(0);
    t.timestamp('received_at', { useTz: true }).notNullable();
    t.text('status').notNullable().defaultTo('queued');
    t.text('reason');
    t.bigInteger('seq');
    t.timestamp('applied_at', { useTz: true });
    t.text('idempotency_key');
    t.unique(['auction_id', 'receipt_no'], { indexName: 'bids_auction_receipt_unique' });
    t.check("kind in ('bid', 'autobid')", [], 'bids_kind_check');
    t.check("status in ('queued', 'accepted', 'rejected')", [], 'bids_status_check');
    t.check('amount > 0', [], 'bids_amount_check');
  });
  await knex.raw("create index bids_queued_idx on bids (auction_id, receipt_no) where status = 'queued'");
  await knex.raw("create index bids_queued_partition_idx on bids (partition, auction_id) where status = 'queued'");
  await knex.raw("create index bids_queued_received_idx on bids (received_at) where status = 'queued'");
  await knex.raw('create unique index bids_idempotency_unique on bids (bidder_id, idempotency_key) where idempotency_key is not null');

  await knex.schema.createTable('autobids', (t) => {
    t.uuid('auction_id').notNullable().references('auctions.id').onDelete('CASCADE').withKeyName('autobids_auction_fk');
    t.uuid('user_id').notNullable().references('users.id').withKeyName('autobids_user_fk');
    t.bigInteger('max_amount').notNullable();
    t.bigInteger('placed_order').notNullable();
    t.boolean('exhausted').notNullable().defaultTo(false);
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.primary(['auction_id', 'user_id'], { constraintName: 'autobids_pkey' });
  });

  // The transactional outbox: every auction change's event, committed with it.
  await knex.schema.createTable('auction_events', (t) => {
    t.uuid('auction_id').notNullable().references('auctions.id').onDelete('CASCADE').withKeyName('auction_events_auction_fk');
    t.bigInteger('seq').notNullable();
    t.text('type').notNullable();
    t.jsonb('payload').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.primary(['auction_id', 'seq'], { constraintName: 'auction_events_pkey' });
  });
  await knex.raw("create index auction_events_bids_idx on auction_events (auction_id, seq desc) where type = 'bid.placed'");

  // Private events (acks, outbid, won) to one user, also committed with the change.
  await knex.schema.createTable('user_events', (t) => {
    t.bigIncrements('id'); // primary key user_events_pkey
    t.uuid('user_id').notNullable().references('users.id').onDelete('CASCADE').withKeyName('user_events_user_fk');
    t.text('type').notNullable();
    t.jsonb('payload').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('published_at', { useTz: true });
  });
  await knex.raw('create index user_events_unpublished_idx on user_events (id) where published_at is null');

  await knex.schema.createTable('auction_bans', (t) => {
    t.uuid('auction_id').notNullable().references('auctions.id').onDelete('CASCADE').withKeyName('auction_bans_auction_fk');
    t.uuid('user_id').notNullable().references('users.id').onDelete('CASCADE').withKeyName('auction_bans_user_fk');
    t.timestamp('expires_at', { useTz: true });
    t.uuid('created_by').references('users.id').withKeyName('auction_bans_creator_fk');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.primary(['auction_id', 'user_id'], { constraintName: 'auction_bans_pkey' });
  });

  // Orders: the winner's order now; the orders issue adds carts and items.
  await knex.schema.createTable('orders', (t) => {
    t.uuid('id').primary({ constraintName: 'orders_pkey' }).defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('buyer_id').notNullable().references('users.id').withKeyName('orders_buyer_fk');
    t.uuid('seller_id').notNullable().references('users.id').withKeyName('orders_seller_fk');
    t.uuid('auction_id').references('auctions.id').withKeyName('orders_auction_fk');
    t.uuid('product_id').references('products.id').withKeyName('orders_product_fk');
    t.text('status').notNullable().defaultTo('pending_payment');
    t.bigInteger('total').notNullable();
    t.text('currency').notNullable();
    t.jsonb('items').notNullable().defaultTo('[]');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.unique(['auction_id'], { indexName: 'orders_auction_unique' });
    t.check("status in ('pending_payment', 'paid', 'shipped', 'delivered', 'cancelled', 'refunded', 'disputed')", [], 'orders_status_check');
  });
  await knex.raw('create index orders_buyer_idx on orders (buyer_id, created_at desc)');
  await knex.raw('create index orders_seller_idx on orders (seller_id, created_at desc)');
}

export async function down(knex: Knex): Promise<void> {
  for (const table of ['orders', 'auction_bans', 'user_events', 'auction_events', 'autobids', 'bids', 'auction_counters']) {
    await knex.schema.dropTable(table);
  }
  await knex.raw('drop index auctions_one_open_per_product');
  await knex.raw('drop index auctions_unpublished_idx');
  await knex.raw('drop index auctions_scheduled_starts_idx');
  await knex.raw('drop index auctions_seller_created_idx');
  await knex.raw('drop index auctions_status_created_idx');
  await knex.raw('drop index auctions_live_ends_idx');
  await knex.schema.alterTable('auctions', (t) => {
    t.dropChecks(['auctions_starting_price_check', 'auctions_soft_close_check', 'auctions_published_seq_check']);
    t.dropColumns('leader_order', 'published_seq', 'ended_at', 'hard_end');
  });
}
