-- Run once by the postgres image when its volume is empty: one database per
-- service (each service creates its own tables with its migrations).
CREATE DATABASE auth;
CREATE DATABASE users;
CREATE DATABASE coins;
CREATE DATABASE merch;
