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
