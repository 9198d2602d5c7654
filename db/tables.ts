/** Row types, one per table, as Postgres returns them. */
export type Role = 'buyer' | 'seller' | 'admin';

export interface UserRow {
  id: string;
  email: string;
  name: string;
  role: Role;
  password_hash: string;
  password_changed_at: Date;
  created_at: Date;
  updated_at: Date;
}

export interface RefreshTokenRow {
  id: string;
  user_id: string;
  family_id: string;
  token_hash: string;
  created_at: Date;
  expires_at: Date;
  used_at: Date | null;
  revoked_at: Date | null;
  revoked_reason: string | null;
}

export interface CategoryRow {
  id: string;
  name: string;
  slug: string;
  parent_id: string | null;
  created_at: Date;
}

export interface ProductRow {
  id: string;
  seller_id: string;
  category_id: string;
  title: string;
  description: string;
  /** bigint: pg returns it as a string; operations convert to number. */
  price: string;
  currency: string;
  images: string[];
  created_at: Date;
  updated_at: Date;
  deleted_at: Date | null;
}

export interface VariantRow {
  id: string;
  product_id: string;
  sku: string;
  name: string;
  price: string;
  stock: number;
  created_at: Date;
}

export type AuctionStatus = 'scheduled' | 'live' | 'ended' | 'cancelled';

export interface AuctionRow {
  id: string;
  seller_id: string;
  product_id: string;
  title: string;
  status: AuctionStatus;
  starting_price: string;
  reserve_price: string | null;
  current_price: string;
  currency: string;
  bid_increment: string | null;
  leader_id: string | null;
  leader_order: string;
  bid_count: number;
  duration_seconds: number;
  starts_at: Date | null;
  ends_at: Date | null;
  soft_close_seconds: number;
  seq: string;
  published_seq: string;
  winner_id: string | null;
  ended_at: Date | null;
  hard_end: boolean;
  end_cap: Date | null;
  created_at: Date;
  updated_at: Date;
}

export interface BidRow {
  id: string;
  auction_id: string;
  bidder_id: string;
  kind: 'bid' | 'autobid';
  amount: string;
  receipt_no: string;
  received_at: Date;
  status: 'queued' | 'accepted' | 'rejected';
  reason: string | null;
  seq: string | null;
  applied_at: Date | null;
  idempotency_key: string | null;
}

export interface AutobidRow {
  auction_id: string;
  user_id: string;
  max_amount: string;
  placed_order: string;
  exhausted: boolean;
}
