import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('categories', (t) => {
    t.uuid('id').primary({ constraintName: 'categories_pkey' }).defaultTo(knex.raw('gen_random_uuid()'));
    t.text('name').notNullable();
    t.text('slug').notNullable().unique({ indexName: 'categories_slug_unique' });
    t.uuid('parent_id').references('categories.id').onDelete('RESTRICT').withKeyName('categories_parent_fk');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['parent_id'], 'categories_parent_idx');
    t.check("slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$'", [], 'categories_slug_check');
  });

  await knex.schema.createTable('products', (t) => {
    t.uuid('id').primary({ constraintName: 'products_pkey' }).defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('seller_id').notNullable().references('users.id').onDelete('RESTRICT').withKeyName('products_seller_fk');
    t.uuid('category_id').notNullable().references('categories.id').onDelete('RESTRICT').withKeyName('products_category_fk');
    t.text('title').notNullable();
    t.text('description').notNullable().defaultTo('');
    t.bigInteger('price').notNullable();
    t.text('currency').notNullable().defaultTo('usd');
    t.jsonb('images').notNullable().defaultTo('[]');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('deleted_at', { useTz: true });
    t.check('price >= 0', [], 'products_price_check');
    t.check("currency ~ '^[a-z]{3}$'", [], 'products_currency_check');
  });
  // Full-text search: title weighs more than description (A vs B), GIN-indexed.
  await knex.raw(`
    alter table products add column search tsvector generated always as (
      setweight(to_tsvector('english', coalesce(title, '')), 'A') ||
      setweight(to_tsvector('english', coalesce(description, '')), 'B')
    ) stored`);
  await knex.raw('create index products_search_idx on products using gin (search) where deleted_at is null');
  // Keyset pagination (newest first) with each list filter, live rows only.
  await knex.raw('create index products_created_idx on products (created_at desc, id desc) where deleted_at is null');
  await knex.raw('create index products_category_created_idx on products (category_id, created_at desc, id desc) where deleted_at is null');
  await knex.raw('create index products_seller_created_idx on products (seller_id, created_at desc, id desc) where deleted_at is null');
  await knex.raw('create index products_price_idx on products (price) where deleted_at is null');

  await knex.schema.createTable('variants', (t) => {
    t.uuid('id').primary({ constraintName: 'variants_pkey' }).defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('product_id').notNullable().references('products.id').onDelete('CASCADE').withKeyName('variants_product_fk');
    t.text('sku').notNullable().unique({ indexName: 'variants_sku_unique', deferrable: 'immediate' });
    t.text('name').notNullable();
    t.bigInteger('price').notNullable();
    t.integer('stock').notNullable().defaultTo(0);
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['product_id'], 'variants_product_idx');
    t.check('price >= 0', [], 'variants_price_check');
    t.check('stock >= 0', [], 'variants_stock_check');
  });

  // Auctions as API.md defines them; the auction engine fills in their life.
  await knex.schema.createTable('auctions', (t) => {
    t.uuid('id').primary({ constraintName: 'auctions_pkey' }).defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('seller_id').notNullable().references('users.id').onDelete('RESTRICT').withKeyName('auctions_seller_fk');
    t.uuid('product_id').notNullable().references('products.id').onDelete('RESTRICT').withKeyName('auctions_product_fk');
    t.text('title').notNullable();
    t.text('status').notNullable().defaultTo('scheduled');
    t.bigInteger('starting_price').notNullable();
    t.bigInteger('reserve_price');
    t.bigInteger('current_price').notNullable();
    t.text('currency').notNullable().defaultTo('usd');
    t.bigInteger('bid_increment');
    t.uuid('leader_id').references('users.id').withKeyName('auctions_leader_fk');
    t.integer('bid_count').notNullable().defaultTo(0);
    t.integer('duration_seconds').notNullable();
    t.timestamp('starts_at', { useTz: true });
    t.timestamp('ends_at', { useTz: true });
    t.integer('soft_close_seconds').notNullable().defaultTo(30);
    t.bigInteger('seq').notNullable().defaultTo(0);
    t.uuid('winner_id').references('users.id').withKeyName('auctions_winner_fk');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.check("status in ('scheduled', 'live', 'ended', 'cancelled')", [], 'auctions_status_check');
    t.index(['product_id', 'status'], 'auctions_product_status_idx');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('auctions');
  await knex.schema.dropTable('variants');
  await knex.schema.dropTable('products');
  await knex.schema.dropTable('categories');
}
