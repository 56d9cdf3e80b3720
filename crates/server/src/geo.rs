//! Offline enrichment: each event's coordinates become a [`Place`] (nearest city, country).
//!
//! Both data sets are compiled into the binary, so no web service is ever called:
//! the nearest city comes from GeoNames' cities list (crate `reverse_geocoder`, CC BY 4.0
//! data), the country from OpenStreetMap borders (crate `country-boundaries`, ODbL data).
//! A point-in-border answer beats the nearest city's country, which can lie across a border;
//! out at sea, the nearest city's country is used.
//!
//! An event without coordinates is placed by its IP address through a [`Locate`]: the seam
//! where an IP geolocation database plugs in. Without one ([`NoDatabase`]) non-public
//! addresses are unlocated as `loopback`, `private` or `reserved` and every other one as
//! `no_database`. The coordinates a locator finds then go through the same [`Geocoder`], so a
//! hit placed by IP has a place like any other.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock};

use country_boundaries::{BOUNDARIES_ODBL_360X180, CountryBoundaries, LatLon};
use reverse_geocoder::{Record, ReverseGeocoder};
use traffic::countries::country_name;
use traffic::{Event, Place};

pub use geoip::{Unlocated, classify};

/// Most remembered coordinate pairs; real feeds repeat a few thousand city centroids, so
/// this is plenty, and the cache is simply cleared when it fills.
const CACHE_CAPACITY: usize = 100_000;

/// Where a [`Locate`] puts an IP address.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IpPlace {
    /// Degrees north.
    pub latitude: f64,
    /// Degrees east.
    pub longitude: f64,
}

/// Places an IP address. Implementations are shared by all requests, so `&self` and thread
/// safe; they should cache.
pub trait Locate: Send + Sync {
    /// The address's coordinates, or why there are none.
    fn locate(&self, ip: IpAddr) -> Result<IpPlace, Unlocated>;
}

/// The locator without a database: [`classify`], else [`Unlocated::NoDatabase`].
#[derive(Debug, Clone, Copy, Default)]
pub struct NoDatabase;

impl Locate for NoDatabase {
    fn locate(&self, ip: IpAddr) -> Result<IpPlace, Unlocated> {
        Err(classify(ip).unwrap_or(Unlocated::NoDatabase))
    }
}

/// An IP geolocation database places an address at its record's coordinates; everything
/// else (non-public addresses, addresses it lacks) is unlocated with its reason.
impl Locate for geoip::GeoIp {
    fn locate(&self, ip: IpAddr) -> Result<IpPlace, Unlocated> {
        self.lookup_shared(ip).map(|found| IpPlace {
            latitude: found.latitude,
            longitude: found.longitude,
        })
    }
}

/// Where an accepted event was placed.
#[derive(Debug, Clone)]
pub enum Placed {
    /// By its own coordinates.
    Event(Arc<Place>),
    /// By its IP address, at these coordinates.
    Ip {
        /// The place.
        place: Arc<Place>,
        /// What the locator said.
        at: IpPlace,
    },
    /// Not at all.
    Unlocated(Unlocated),
}

impl Placed {
    /// As the aggregates take it.
    pub fn location(&self) -> traffic::Location<'_> {
        match self {
            Placed::Event(place) => traffic::Location::Event(place),
            Placed::Ip { place, .. } => traffic::Location::Ip(place),
            Placed::Unlocated(reason) => traffic::Location::Unlocated(reason.as_str()),
        }
    }
}

/// Resolves coordinates to places. Build once (it parses ~145,000 cities) and share.
pub struct Geocoder {
    cities: ReverseGeocoder,
    borders: CountryBoundaries,
    known: Mutex<Known>,
}

#[derive(Default)]
struct Known {
    /// Places by (city record address, country code): one `Arc` per place, so aggregates
    /// and every hit share it.
    places: HashMap<(usize, [u8; 2]), Arc<Place>, foldhash::fast::RandomState>,
    /// Recently resolved coordinates (as bit patterns) to their place.
    /// (foldhash, randomly seeded: cheap, and still keyed against chosen collisions.)
    coordinates: HashMap<(u64, u64), Arc<Place>, foldhash::fast::RandomState>,
}

impl Geocoder {
    /// Loads the bundled data sets.
    ///
    /// # Errors
    /// Only if the bundled borders file is corrupt, which would be a build defect.
    pub fn new() -> Result<Self, country_boundaries::ReadError> {
        Ok(Self {
            cities: ReverseGeocoder::new(),
            borders: CountryBoundaries::from_reader(BOUNDARIES_ODBL_360X180)?,
            known: Mutex::new(Known::default()),
        })
    }

    /// One process-wide instance, loaded on first use (tests and the server share it).
    ///
    /// # Panics
    /// If the bundled data is corrupt (a build defect, caught by every test).
    pub fn shared() -> Arc<Geocoder> {
        static SHARED: OnceLock<Arc<Geocoder>> = OnceLock::new();
        SHARED
            .get_or_init(|| {
                #[allow(clippy::expect_used)]
                Arc::new(Geocoder::new().expect("bundled country borders are valid"))
            })
            .clone()
    }

    /// The place for a (validated) latitude and longitude.
    pub fn locate(&self, latitude: f64, longitude: f64) -> Arc<Place> {
        let coordinates = (latitude.to_bits(), longitude.to_bits());
        if let Some(place) = self.lock().coordinates.get(&coordinates) {
            return Arc::clone(place);
        }
        let city = self.cities.search((latitude, longitude)).record;
        let country = self.country_at(latitude, longitude).unwrap_or(&city.cc);
        let mut known = self.lock();
        let place = Arc::clone(
            known
                .places
                .entry((std::ptr::from_ref(city).addr(), code_bytes(country)))
                .or_insert_with(|| Arc::new(place_of(city, country))),
        );
        if known.coordinates.len() >= CACHE_CAPACITY {
            known.coordinates.clear();
        }
        known.coordinates.insert(coordinates, Arc::clone(&place));
        place
    }

    /// The places of many events: by their coordinates, or by `locator` when they have
    /// none. The cache's lock is taken once for all of them (new coordinates are then
    /// resolved one by one).
    pub fn place_all(&self, locator: &dyn Locate, events: &[Event]) -> Vec<Placed> {
        let points: Vec<Result<(f64, f64, bool), Unlocated>> = events
            .iter()
            .map(|e| match e.coordinates() {
                Some((latitude, longitude)) => Ok((latitude, longitude, false)),
                None => locator
                    .locate(e.ip)
                    .map(|at| (at.latitude, at.longitude, true)),
            })
            .collect();
        let cached: Vec<Option<Arc<Place>>> = {
            let known = self.lock();
            points
                .iter()
                .map(|point| {
                    let (latitude, longitude, _) = point.as_ref().ok()?;
                    known
                        .coordinates
                        .get(&(latitude.to_bits(), longitude.to_bits()))
                        .cloned()
                })
                .collect()
        };
        points
            .into_iter()
            .zip(cached)
            .map(|(point, place)| match point {
                Err(reason) => Placed::Unlocated(reason),
                Ok((latitude, longitude, by_ip)) => {
                    let place = place.unwrap_or_else(|| self.locate(latitude, longitude));
                    if by_ip {
                        Placed::Ip {
                            place,
                            at: IpPlace {
                                latitude,
                                longitude,
                            },
                        }
                    } else {
                        Placed::Event(place)
                    }
                }
            })
            .collect()
    }

    /// The country whose borders contain the point, if any.
    fn country_at(&self, latitude: f64, longitude: f64) -> Option<&str> {
        let position = LatLon::new(latitude, longitude).ok()?;
        // Ids come smallest region first ("US-TX", "US"); the country is the one without a
        // subdivision suffix.
        self.borders
            .ids(position)
            .into_iter()
            .find(|id| id.len() == 2)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Known> {
        // A panic while holding this lock cannot leave the maps inconsistent (every update
        // is a single insert or clear), so a poisoned lock is still good to use.
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn code_bytes(code: &str) -> [u8; 2] {
    match code.as_bytes() {
        [a, b] => [*a, *b],
        _ => [0, 0],
    }
}

/// A place's key: the same for the same gazetteer row and country in every run and on
/// every server (the history stores events by it), below 2^53 so JavaScript reads it
/// exactly. FNV-1a over the row's coordinates and the country code: with ~145,000 places in
/// 2^53 keys, a collision is out of reach.
fn place_key(city: &Record, country_code: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let bytes = city
        .lat
        .to_bits()
        .to_le_bytes()
        .into_iter()
        .chain(city.lon.to_bits().to_le_bytes())
        .chain(code_bytes(country_code));
    for byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash & ((1 << 53) - 1)
}

fn place_of(city: &Record, country_code: &str) -> Place {
    Place {
        key: place_key(city, country_code),
        city: city.name.clone(),
        region: city.admin1.clone(),
        country_code: country_code.to_owned(),
        country: country_name(country_code).unwrap_or_default().to_owned(),
        latitude: city.lat,
        longitude: city.lon,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_coordinates_resolve_to_their_city_and_country() {
        let geo = Geocoder::shared();
        let paris = geo.locate(48.8566, 2.3522);
        assert_eq!(paris.country_code, "FR");
        assert_eq!(paris.country, "France");
        assert_eq!(paris.city, "Paris");
        let bakersfield = geo.locate(35.3696, -119.0105); // first row of the course file
        assert_eq!(bakersfield.city, "Bakersfield");
        assert_eq!(bakersfield.country_code, "US");
        assert_eq!(bakersfield.region, "California");
    }

    #[test]
    fn the_same_place_is_one_shared_value_with_one_key() {
        let geo = Geocoder::shared();
        let a = geo.locate(52.52, 13.405);
        let b = geo.locate(52.5201, 13.4049);
        assert!(Arc::ptr_eq(&a, &b));
        assert_ne!(a.key, geo.locate(-33.8688, 151.2093).key);
    }

    #[test]
    fn place_keys_are_the_same_in_every_run_and_fit_a_javascript_number() {
        let points = [(48.8566, 2.3522), (-33.8688, 151.2093), (0.0, -160.0)];
        let one_run = Geocoder::shared();
        let keys: Vec<u64> = points
            .iter()
            .map(|&(la, lo)| one_run.locate(la, lo).key)
            .collect();
        // Another run meets the places in another order.
        let another_run = Geocoder::new().unwrap();
        let mut again: Vec<u64> = points
            .iter()
            .rev()
            .map(|&(la, lo)| another_run.locate(la, lo).key)
            .collect();
        again.reverse();
        assert_eq!(again, keys);
        assert!(keys.iter().all(|&key| key < 1 << 53), "{keys:?}");
    }

    #[test]
    fn locating_many_at_once_gives_each_its_own_place() {
        let geo = Geocoder::shared();
        let event = |latitude, longitude| {
            Event::at(
                IpAddr::from([192, 0, 2, 1]),
                latitude,
                longitude,
                1_736_919_120.0,
                false,
            )
        };
        let events = [
            event(48.8566, 2.3522),
            event(35.6762, 139.6503),
            event(48.8566, 2.3522),
        ];
        let places: Vec<Arc<Place>> = geo
            .place_all(&NoDatabase, &events)
            .into_iter()
            .map(|p| match p {
                Placed::Event(place) => place,
                other => panic!("placed by its coordinates, not {other:?}"),
            })
            .collect();
        let cities: Vec<&str> = places.iter().map(|p| p.city.as_str()).collect();
        assert_eq!(cities, ["Paris", "Tokyo", "Paris"]);
        assert!(Arc::ptr_eq(&places[0], &places[2]));
    }

    #[test]
    fn non_public_addresses_are_classified_and_public_ones_have_no_database() {
        for (ip, want) in [
            ("127.0.0.1", Unlocated::Loopback),
            ("::1", Unlocated::Loopback),
            ("10.1.2.3", Unlocated::Private),
            ("172.16.0.1", Unlocated::Private),
            ("192.168.1.1", Unlocated::Private),
            ("169.254.1.1", Unlocated::Private),
            ("fd00::1", Unlocated::Private),
            ("fe80::1", Unlocated::Private),
            ("::ffff:10.0.0.1", Unlocated::Private),
            ("192.0.2.44", Unlocated::Reserved),
            ("198.51.100.1", Unlocated::Reserved),
            ("203.0.113.9", Unlocated::Reserved),
            ("0.0.0.0", Unlocated::Reserved),
            ("224.0.0.1", Unlocated::Reserved),
            ("255.255.255.255", Unlocated::Reserved),
            ("2001:db8::1", Unlocated::Reserved),
            ("::", Unlocated::Reserved),
            ("8.8.8.8", Unlocated::NoDatabase),
            ("172.32.0.1", Unlocated::NoDatabase),
            ("2001:4860:4860::8888", Unlocated::NoDatabase),
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(NoDatabase.locate(ip), Err(want), "{ip}");
        }
    }

    #[test]
    fn an_event_without_coordinates_is_placed_by_the_locator() {
        struct Fixed;
        impl Locate for Fixed {
            fn locate(&self, ip: IpAddr) -> Result<IpPlace, Unlocated> {
                if ip.is_loopback() {
                    return Err(Unlocated::Loopback);
                }
                Ok(IpPlace {
                    latitude: 48.8566,
                    longitude: 2.3522,
                })
            }
        }
        let geo = Geocoder::shared();
        let events = [
            Event::new("8.8.8.8".parse().unwrap(), 1_736_919_120.0, false),
            Event::new("127.0.0.1".parse().unwrap(), 1_736_919_120.0, false),
            Event::at(
                "8.8.8.8".parse().unwrap(),
                35.6762,
                139.6503,
                1_736_919_120.0,
                false,
            ),
        ];
        let placed = geo.place_all(&Fixed, &events);
        match &placed[0] {
            Placed::Ip { place, at } => {
                assert_eq!(place.city, "Paris");
                assert_eq!(at.latitude, 48.8566);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(placed[1], Placed::Unlocated(Unlocated::Loopback)));
        assert!(matches!(&placed[2], Placed::Event(p) if p.city == "Tokyo"));
    }

    #[test]
    fn the_real_database_places_an_address_in_its_country_through_the_bundled_places() {
        // scripts/fetch-geoip puts DB-IP City Lite here; the test command runs it first.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/geoip");
        let files = geoip::GeoIp::default_files(&dir);
        if files.len() < 2 {
            eprintln!(
                "skipped: no DB-IP files in {} (run scripts/fetch-geoip)",
                dir.display()
            );
            return;
        }
        let db = geoip::GeoIp::open(&files).unwrap();
        let geo = Geocoder::shared();
        let events = [
            Event::new("8.8.8.8".parse().unwrap(), 1_736_919_120.0, false),
            Event::new(
                "2001:4860:4860::8888".parse().unwrap(),
                1_736_919_120.0,
                false,
            ),
            Event::new("10.0.0.1".parse().unwrap(), 1_736_919_120.0, false),
        ];
        let placed = geo.place_all(&db, &events);
        // The bundled places put the database's coordinates in the database's own country.
        for (hit, event) in placed[..2].iter().zip(&events) {
            let found = db.lookup(event.ip).unwrap();
            match hit {
                Placed::Ip { place, .. } => {
                    assert_eq!(
                        place.country_code, found.country_code,
                        "{place:?} {found:?}"
                    );
                }
                other => panic!("placed by IP, not {other:?}"),
            }
        }
        assert!(matches!(&placed[0], Placed::Ip { place, .. } if place.country_code == "US"));
        assert!(matches!(placed[2], Placed::Unlocated(Unlocated::Private)));
    }

    #[test]
    fn open_sea_still_gets_the_nearest_city_and_its_country() {
        let geo = Geocoder::shared();
        let place = geo.locate(0.0, -30.0); // mid-Atlantic
        assert!(!place.city.is_empty());
        assert_eq!(place.country_code.len(), 2);
    }
}
