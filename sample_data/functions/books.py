"""Books: a small local catalogue of classic novels in a fictional bookshop."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Book:
    book_id: str
    title: str
    author: str
    year: int
    genre: str
    price_usd: float
    in_stock: int


CATALOGUE = [
    Book("bk-001", "Pride and Prejudice", "Jane Austen", 1813, "romance", 9.99, 12),
    Book("bk-002", "Emma", "Jane Austen", 1815, "romance", 8.49, 4),
    Book("bk-003", "Nineteen Eighty-Four", "George Orwell", 1949, "dystopian", 11.99, 20),
    Book("bk-004", "Animal Farm", "George Orwell", 1945, "satire", 7.99, 0),
    Book("bk-005", "Moby-Dick", "Herman Melville", 1851, "adventure", 12.5, 3),
    Book("bk-006", "Frankenstein", "Mary Shelley", 1818, "science fiction", 8.99, 7),
    Book("bk-007", "The Time Machine", "H. G. Wells", 1895, "science fiction", 6.99, 9),
    Book("bk-008", "The War of the Worlds", "H. G. Wells", 1898, "science fiction", 7.49, 5),
    Book("bk-009", "Crime and Punishment", "Fyodor Dostoevsky", 1866, "literary", 13.99, 6),
    Book("bk-010", "The Great Gatsby", "F. Scott Fitzgerald", 1925, "literary", 10.99, 15),
    Book("bk-011", "Dracula", "Bram Stoker", 1897, "horror", 9.49, 8),
    Book("bk-012", "The Hound of the Baskervilles", "Arthur Conan Doyle", 1902, "mystery", 7.99, 11),
    Book("bk-013", "A Study in Scarlet", "Arthur Conan Doyle", 1887, "mystery", 6.49, 2),
    Book("bk-014", "Jane Eyre", "Charlotte Brontë", 1847, "romance", 9.99, 10),
    Book("bk-015", "Wuthering Heights", "Emily Brontë", 1847, "romance", 8.99, 0),
    Book("bk-016", "The Adventures of Tom Sawyer", "Mark Twain", 1876, "adventure", 7.99, 13),
    Book("bk-017", "Treasure Island", "Robert Louis Stevenson", 1883, "adventure", 6.99, 9),
]


def _matches(text: str | None, value: str) -> bool:
    return text is None or text.casefold() in value.casefold()


def search_books(
    query: str | None = None,
    author: str | None = None,
    genre: str | None = None,
    published_before: int | None = None,
    max_results: int = 5,
) -> list[Book]:
    """Books whose title contains ``query`` and whose author contains ``author``, oldest first."""
    found = [
        book
        for book in CATALOGUE
        if _matches(query, book.title)
        and _matches(author, book.author)
        and (genre is None or book.genre == genre)
        and (published_before is None or book.year < published_before)
    ]
    return sorted(found, key=lambda book: book.year)[:max_results]


def get_book(book_id: str) -> dict[str, object]:
    """One book by its id, or an error payload when the catalogue has no such id."""
    for book in CATALOGUE:
        if book.book_id == book_id:
            return asdict(book)
    return {"error": f"no book with id {book_id!r}"}


def books_by_author(author: str) -> list[str]:
    """The titles the shop holds by an author (full or partial name), oldest first."""
    return [book.title for book in sorted(CATALOGUE, key=lambda book: book.year) if _matches(author, book.author)]
