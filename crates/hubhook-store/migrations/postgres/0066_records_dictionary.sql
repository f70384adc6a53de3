-- SQLite's version 0066 marks rows packed with a dictionary; PostgreSQL stores records as
-- they are (TOAST compresses them). This version only keeps the two engines' version numbers
-- aligned.
SELECT 1;
